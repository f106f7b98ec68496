package inventory

import (
	"sort"
	"strconv"
	"strings"
)

// Fold writes a list of names compactly, the inverse of Expand:
// web1, web2, web3, web5 → "web[1-3,5]"; db01…db10 → "db[01-10]". Names
// are split at their last run of digits; names that share what comes
// before and after it fold together. Groups are listed in order of their
// first name, joined by commas.
func Fold(names []string) string {
	type key struct {
		pre, suf string
		width    int // zero-padded digits; 0 = plain numbers
	}
	type group struct {
		key
		nums  []int
		first int
	}
	groups := map[key]*group{}
	var order []*group
	var plain []struct {
		name  string
		first int
	}
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		pre, digits, suf, ok := splitDigits(n)
		if !ok {
			plain = append(plain, struct {
				name  string
				first int
			}{n, i})
			continue
		}
		v, _ := strconv.Atoi(digits)
		k := key{pre: pre, suf: suf}
		if len(digits) > 1 && digits[0] == '0' {
			k.width = len(digits)
		}
		g := groups[k]
		if g == nil {
			g = &group{key: k, first: i}
			groups[k] = g
			order = append(order, g)
		}
		g.nums = append(g.nums, v)
	}
	// A plain number as wide as a padded group's (db10 beside db01) joins it.
	for _, g := range order {
		if g.width != 0 || len(g.nums) == 0 {
			continue
		}
		var keep []int
		for _, v := range g.nums {
			w := len(strconv.Itoa(v))
			if pg := groups[key{g.pre, g.suf, w}]; pg != nil && w > 1 {
				pg.nums = append(pg.nums, v)
				pg.first = min(pg.first, g.first)
				continue
			}
			keep = append(keep, v)
		}
		g.nums = keep
	}
	type piece struct {
		text  string
		first int
	}
	var pieces []piece
	for _, g := range order {
		if len(g.nums) == 0 {
			continue
		}
		sort.Ints(g.nums)
		pad := func(v int) string {
			s := strconv.Itoa(v)
			if len(s) < g.width {
				s = strings.Repeat("0", g.width-len(s)) + s
			}
			return s
		}
		if len(g.nums) == 1 {
			pieces = append(pieces, piece{g.pre + pad(g.nums[0]) + g.suf, g.first})
			continue
		}
		var parts []string
		for i := 0; i < len(g.nums); {
			j := i
			for j+1 < len(g.nums) && g.nums[j+1] == g.nums[j]+1 {
				j++
			}
			if j > i {
				parts = append(parts, pad(g.nums[i])+"-"+pad(g.nums[j]))
			} else {
				parts = append(parts, pad(g.nums[i]))
			}
			i = j + 1
		}
		pieces = append(pieces, piece{g.pre + "[" + strings.Join(parts, ",") + "]" + g.suf, g.first})
	}
	for _, p := range plain {
		pieces = append(pieces, piece{p.name, p.first})
	}
	sort.SliceStable(pieces, func(i, j int) bool { return pieces[i].first < pieces[j].first })
	out := make([]string, len(pieces))
	for i, p := range pieces {
		out[i] = p.text
	}
	return strings.Join(out, ",")
}

// splitDigits splits name around its last run of digits.
func splitDigits(name string) (pre, digits, suf string, ok bool) {
	end := -1
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] >= '0' && name[i] <= '9' {
			end = i + 1
			break
		}
	}
	if end < 0 {
		return "", "", "", false
	}
	start := end
	for start > 0 && name[start-1] >= '0' && name[start-1] <= '9' {
		start--
	}
	if end-start > 9 {
		return "", "", "", false
	}
	return name[:start], name[start:end], name[end:], true
}
