package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxExpand is the most names one pattern may expand to.
const MaxExpand = 10000

// span is one piece of a pattern: literal text, or a bracketed list of
// numbers and ranges.
type span struct {
	lit  string
	nums []numRange // nil for a literal
}

type numRange struct {
	lo, hi, width int // width > 0: zero-padded to it
}

// HasRange reports whether s contains a bracketed range.
func HasRange(s string) bool { return strings.ContainsAny(s, "[]") }

// Expand expands the bracketed ranges of a pattern: "web[1-3,5]" is web1,
// web2, web3, web5; "db[01-10]" keeps the zero padding; several brackets
// multiply ("r[1-2]n[1-2]"). A pattern without brackets is itself. More
// than MaxExpand names is an error, found before any is made.
func Expand(pattern string) ([]string, error) {
	out, _, err := expand(pattern)
	return out, err
}

// expand also returns, for each name, the number its first range gave it
// (as written, with its padding), for an address template's {n}.
func expand(pattern string) (names, nums []string, err error) {
	spans, err := parsePattern(pattern)
	if err != nil {
		return nil, nil, err
	}
	total := 1
	for _, sp := range spans {
		if sp.nums == nil {
			continue
		}
		n := 0
		for _, r := range sp.nums {
			n += r.hi - r.lo + 1
			if n > MaxExpand {
				break
			}
		}
		total *= n
		if total > MaxExpand {
			return nil, nil, fmt.Errorf("%q expands to more than %s names (the limit)", pattern, "10,000")
		}
	}
	names, nums = []string{""}, []string{""}
	first := true
	for _, sp := range spans {
		if sp.nums == nil {
			for i := range names {
				names[i] += sp.lit
			}
			continue
		}
		var nn, nu []string
		for i, prefix := range names {
			for _, r := range sp.nums {
				for v := r.lo; v <= r.hi; v++ {
					d := strconv.Itoa(v)
					if len(d) < r.width {
						d = strings.Repeat("0", r.width-len(d)) + d
					}
					nn = append(nn, prefix+d)
					if first {
						nu = append(nu, d)
					} else {
						nu = append(nu, nums[i])
					}
				}
			}
		}
		names, nums, first = nn, nu, false
	}
	return names, nums, nil
}

func parsePattern(p string) ([]span, error) {
	var spans []span
	rest := p
	for rest != "" {
		i := strings.IndexAny(rest, "[]")
		if i < 0 {
			spans = append(spans, span{lit: rest})
			break
		}
		if rest[i] == ']' {
			return nil, fmt.Errorf("%q: ']' without '['", p)
		}
		if i > 0 {
			spans = append(spans, span{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return nil, fmt.Errorf("%q: '[' without ']'", p)
		}
		body := rest[i+1 : i+j]
		if strings.Contains(body, "[") {
			return nil, fmt.Errorf("%q: nested '['", p)
		}
		nums, err := parseNums(p, body)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{nums: nums})
		rest = rest[i+j+1:]
	}
	return spans, nil
}

func parseNums(p, body string) ([]numRange, error) {
	if strings.TrimSpace(body) == "" {
		return nil, fmt.Errorf("%q: empty range []", p)
	}
	var out []numRange
	for _, item := range strings.Split(body, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := number(lo)
		b, err2 := number(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: %q is not a number or a range like 1-9", p, item)
		}
		if b < a {
			return nil, fmt.Errorf("%q: range %s runs backwards", p, item)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		out = append(out, numRange{lo: a, hi: b, width: width})
	}
	return out, nil
}

func number(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, fmt.Errorf("bad number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number")
		}
	}
	return strconv.Atoi(s)
}

// SplitList splits a comma-separated target list, leaving the commas inside
// brackets alone: "web[1-3,5],db1" is "web[1-3,5]" and "db1".
func SplitList(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
