package repl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/transport"
)

// :diff NAME [TARGET] fetches NAME from every host of the target (a
// replicated copy, as :get does) and shows only what differs: the paths
// into the value (x["b"], x.field, x[3]) whose values are not the same on
// every host, each with the hosts that have each value. Dicts and structs
// are compared key by key, lists and tuples of equal length item by item;
// anything else is compared whole.

// maxDiffs is the most differing paths shown.
const maxDiffs = 100

func cmdDiff(s *shell, args []string) {
	if len(args) < 1 || len(args) > 2 {
		s.usage("diff")
		return
	}
	name := args[0]
	var hosts []*host
	switch {
	case len(args) == 2:
		var err error
		if hosts, err = s.resolveTarget(args[1]); err != nil {
			s.fail("diff: %s", err.Error())
			return
		}
	case s.fan.target != nil:
		hosts = s.fan.target.hosts
	default:
		s.fail("diff compares several hosts: :use @GROUP (or HOST,HOST) first, or :diff %s TARGET", Escape(name))
		return
	}
	results, interrupted := s.fanRun(hosts, 0, func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		v, err := c.Get(ctx, name)
		r.value = v
		return err
	}, nil)
	if interrupted && !s.cfg.Interactive {
		s.interrupted, s.quit = true, true
	}
	text, _ := s.diffText(name, results)
	s.print(text)
	var bad []*fanResult
	for _, r := range results {
		if r.status == fanUnreachable || r.status == fanCancelled {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		s.failed = true
		s.printErr(s.gatherText(bad, false).errs)
	}
}

// diffEntry is one host's value at a path, or why it has none.
type diffEntry struct {
	r       *fanResult
	v       transport.Value
	missing string // non-empty: no value here ("<missing>", "<error: ...>")
}

// diffText compares name's value across the hosts that answered and
// reports whether it was the same everywhere.
func (s *shell) diffText(name string, results []*fanResult) (string, bool) {
	var entries []diffEntry
	for _, r := range results {
		switch r.status {
		case fanOK:
			entries = append(entries, diffEntry{r: r, v: r.value})
		case fanFailed:
			msg := errText(r.err)
			var re *transport.RemoteError
			if asRemote(r.err, &re) {
				msg = re.Info.Msg
			}
			entries = append(entries, diffEntry{r: r, missing: "<" + msg + ">"})
		}
	}
	if len(entries) == 0 {
		return "", false
	}
	d := &differ{s: s}
	d.walk(name, entries)
	if len(d.paths) == 0 {
		what := "the same"
		if entries[0].missing != "" {
			what = "the same: " + entries[0].missing
		}
		return fmt.Sprintf("%s is %s on all %s\n", Escape(name), what, plural(len(entries), "host")), true
	}
	var b strings.Builder
	for _, p := range d.paths {
		b.WriteString(p)
	}
	if d.more > 0 {
		b.WriteString(s.r.Notice("… and %s more", plural(d.more, "difference")))
	}
	fmt.Fprintf(&b, "%s differs at %s across %s\n", Escape(name), plural(len(d.paths)+d.more, "place"), plural(len(entries), "host"))
	return b.String(), false
}

type differ struct {
	s     *shell
	paths []string
	more  int
}

func (d *differ) walk(path string, entries []diffEntry) {
	if len(d.paths) >= maxDiffs {
		d.more++
		return
	}
	groups := d.group(entries)
	if len(groups) == 1 {
		return
	}
	// All present and of one container kind: compare inside.
	kind := entries[0].v.Kind
	same := true
	for _, e := range entries {
		if e.missing != "" || e.v.Kind != kind {
			same = false
			break
		}
	}
	if same && (kind == transport.KindDict || kind == transport.KindStruct) {
		d.walkMap(path, kind, entries)
		return
	}
	if same && (kind == transport.KindList || kind == transport.KindTuple) {
		n := entries[0].v.Len()
		equalLen := true
		for _, e := range entries {
			equalLen = equalLen && e.v.Len() == n
		}
		if equalLen {
			for i := 0; i < n; i++ {
				sub := make([]diffEntry, len(entries))
				for j, e := range entries {
					sub[j] = diffEntry{r: e.r, v: e.v.Items[i]}
				}
				d.walk(fmt.Sprintf("%s[%d]", path, i), sub)
			}
			return
		}
	}
	d.report(path, groups)
}

func (d *differ) walkMap(path string, kind transport.Kind, entries []diffEntry) {
	var keys []transport.Value
	for _, e := range entries {
		for i := 0; i+1 < len(e.v.Items); i += 2 {
			k := e.v.Items[i]
			found := false
			for _, have := range keys {
				if have.Equal(k) {
					found = true
					break
				}
			}
			if !found {
				keys = append(keys, k)
			}
		}
	}
	plain := d.s.plain()
	for _, k := range keys {
		sub := make([]diffEntry, len(entries))
		for j, e := range entries {
			sub[j] = diffEntry{r: e.r, missing: "<missing>"}
			for i := 0; i+1 < len(e.v.Items); i += 2 {
				if e.v.Items[i].Equal(k) {
					sub[j] = diffEntry{r: e.r, v: e.v.Items[i+1]}
					break
				}
			}
		}
		var p string
		if kind == transport.KindStruct {
			p = path + "." + fieldName(k)
		} else {
			p = path + "[" + strings.TrimRight(plain.Value(k), "\n") + "]"
		}
		d.walk(p, sub)
	}
}

type diffGroup struct {
	e     diffEntry
	hosts []string
}

func (d *differ) group(entries []diffEntry) []*diffGroup {
	var groups []*diffGroup
outer:
	for _, e := range entries {
		for _, g := range groups {
			if g.e.missing == e.missing && (e.missing != "" || g.e.v.Equal(e.v)) {
				g.hosts = append(g.hosts, e.r.name)
				continue outer
			}
		}
		groups = append(groups, &diffGroup{e: e, hosts: []string{e.r.name}})
	}
	return groups
}

func (d *differ) report(path string, groups []*diffGroup) {
	s := d.s
	var b strings.Builder
	b.WriteString(s.r.paint(styleKey, Escape(path)) + ":\n")
	w := *s.r
	w.Width = max(s.r.width()-8, 20)
	for _, g := range groups {
		label := inventory.Fold(g.hosts)
		if len(g.hosts) > 1 {
			label += fmt.Sprintf(" (%d)", len(g.hosts))
		}
		val := s.r.paint(styleNote, Escape(g.e.missing))
		if g.e.missing == "" {
			val = strings.TrimRight(w.Value(g.e.v), "\n")
		}
		b.WriteString("    " + s.r.paint(styleHeader, label+":") + " " + strings.ReplaceAll(val, "\n", "\n        ") + "\n")
	}
	d.paths = append(d.paths, b.String())
}
