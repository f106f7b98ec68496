package repl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/transport"
)

// Gathering: hosts whose chunk ended the same way — same value and same
// output, or the same error, or unreachable for the same reason — are
// shown once under their folded names ("web[1-3,5] (4): 42"). Successes
// come first, the largest group first; then failures, cancellations and
// unreachable hosts. A line of counts and the slowest host ends it.

type gathered struct {
	ok, errs string // what goes to the output and to the error stream
}

type gatherGroup struct {
	key     string
	results []*fanResult
}

// plain is the renderer without color, for comparing values by their text.
func (s *shell) plain() *Renderer {
	r := *s.r
	r.Color = false
	return &r
}

func (s *shell) gatherKey(r *fanResult, plain *Renderer) string {
	out := r.output.String()
	switch r.status {
	case fanOK:
		return "0\x00" + out + "\x00" + r.warn + "\x00" + plain.Value(r.value)
	case fanFailed:
		var re *transport.RemoteError
		if asRemote(r.err, &re) {
			var b strings.Builder
			b.WriteString(re.Info.Kind + "\x00" + re.Info.Msg)
			for _, f := range re.Info.Frames { // the chunk's own file name varies by host: <in[N]>
				fmt.Fprintf(&b, "\x00%s:%d:%d:%s", f.Func, f.Line, f.Col, f.Source)
			}
			return "1\x00" + out + "\x00" + b.String()
		}
		return "1\x00" + out + "\x00" + errText(r.err)
	case fanCancelled:
		return "2\x00" + out
	}
	return "3\x00" + r.why
}

func asRemote(err error, re **transport.RemoteError) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*transport.RemoteError)
	if !ok {
		return false
	}
	*re = e
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return connMsg(err)
}

// groupResults groups results by how they ended, in display order.
func (s *shell) groupResults(results []*fanResult) []*gatherGroup {
	plain := s.plain()
	byKey := map[string]*gatherGroup{}
	var groups []*gatherGroup
	for _, r := range results {
		k := s.gatherKey(r, plain)
		g := byKey[k]
		if g == nil {
			g = &gatherGroup{key: k}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.results = append(g.results, r)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].results[0].status, groups[j].results[0].status
		if a != b {
			return a < b
		}
		return len(groups[i].results) > len(groups[j].results)
	})
	return groups
}

// label is a group's folded host list, with its size when more than one.
func (g *gatherGroup) label() string {
	names := make([]string, len(g.results))
	for i, r := range g.results {
		names[i] = r.name
	}
	l := inventory.Fold(names)
	if len(names) > 1 {
		l += fmt.Sprintf(" (%d)", len(names))
	}
	return l
}

// gatherText renders grouped results. Successes with a None result and no
// output are shown only when their value is not what every host returned
// (showValues false hides successes altogether, for :load and the like).
func (s *shell) gatherText(results []*fanResult, showValues bool) gathered {
	groups := s.groupResults(results)
	okGroups := 0
	for _, g := range groups {
		if g.results[0].status == fanOK {
			okGroups++
		}
	}
	var ok, errs strings.Builder
	for _, g := range groups {
		r := g.results[0]
		label := g.label()
		if r.status != fanOK {
			errs.WriteString(s.failureText(r, label, true))
			continue
		}
		if !showValues {
			if r.output.Len() > 0 {
				ok.WriteString(s.r.paint(styleHeader, label+":") + "\n" + s.indented(s.r.Output(r.output.String())))
			}
			continue
		}
		out := r.output.String()
		if r.value.IsNone() && out == "" && r.warn == "" && okGroups == 1 {
			continue
		}
		head := s.r.paint(styleHeader, label+":")
		val := ""
		if !r.value.IsNone() || out == "" {
			val = s.r.Value(r.value)
		}
		if out == "" && r.warn == "" && !strings.Contains(val, "\n") {
			ok.WriteString(head + " " + val + "\n")
			continue
		}
		ok.WriteString(head + "\n")
		if out != "" {
			ok.WriteString(s.indented(s.r.Output(out)))
			if r.cut {
				ok.WriteString("    " + s.r.Notice("output cut at %s", byteSize(maxGatherOutput)))
			}
		}
		if r.warn != "" {
			ok.WriteString("    " + s.r.Notice("%s", r.warn))
		}
		if val != "" {
			w := *s.r
			w.Width = max(s.r.width()-4, 20)
			ok.WriteString(s.indented(w.Value(r.value)))
		}
	}
	return gathered{ok: ok.String(), errs: errs.String()}
}

// failureText shows one failed, cancelled or unreachable host (or group:
// label is its folded host list). withOutput shows what it printed first.
func (s *shell) failureText(r *fanResult, label string, withOutput bool) string {
	var b strings.Builder
	head := s.r.paint(styleHeader, label+":")
	if out := r.output.String(); withOutput && out != "" {
		b.WriteString(head + "\n" + s.indented(s.r.Output(out)))
	}
	switch r.status {
	case fanCancelled:
		msg := "cancelled"
		if r.why != "" {
			msg += " (" + r.why + ")"
		}
		b.WriteString(head + " " + s.r.paint(styleNotice, Escape(msg)) + "\n")
	case fanUnreachable:
		b.WriteString(head + " " + s.r.paint(styleErr, "unreachable") + " " + s.r.paint(styleErrMsg, "("+Escape(r.why)+")") + "\n")
	default:
		var re *transport.RemoteError
		if asRemote(r.err, &re) {
			if len(re.Info.Frames) > 0 {
				b.WriteString(s.r.Error(label, re))
			} else {
				b.WriteString(head + " " + s.r.Error("", re))
			}
		} else {
			b.WriteString(head + " " + s.r.Fail("%s", errText(r.err)))
		}
	}
	return withNewline(b.String())
}

// summary is the line of counts and the slowest host.
func (s *shell) summary(results []*fanResult) string {
	var n [4]int
	var slow *fanResult
	for _, r := range results {
		n[r.status]++
		if r.status != fanUnreachable && r.dur > 0 && (slow == nil || r.dur > slow.dur) {
			slow = r
		}
	}
	var parts []string
	for st, c := range n {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, fanStatus(st)))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no hosts")
	}
	line := strings.Join(parts, ", ")
	if slow != nil && len(results) > 1 {
		line += fmt.Sprintf(" · slowest %s %s", slow.name, fmtDuration(slow.dur))
	}
	return s.r.paint(styleNote, line) + "\n"
}

// indented indents every line of text by four spaces.
func (s *shell) indented(text string) string {
	text = withNewline(text)
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		b.WriteString("    " + l)
	}
	return b.String()
}

// indentRest indents the lines of a multi-line value after its first.
func indentRest(text string) string {
	return withNewline(strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n    "))
}
