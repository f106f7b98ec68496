package repl

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/syntax"

	"github.com/rshell/rshell/transport"
)

// Value renders v as Starlark would print it (its repr), with colors when
// r.Color is set. A value whose one-line form is wider than the terminal is
// broken over indented lines, each child kept on one line where it fits.
// Containers longer than MaxItems and values longer than MaxChars are
// abbreviated with a note saying so. The result has no trailing newline.
//
// The work done is bounded by MaxItems, MaxChars and the width, not by the
// size of v: rendering a 100,000-element dict looks at MaxItems of them.
func (r *Renderer) Value(v transport.Value) string {
	p := &printer{
		r:        r,
		width:    r.width(),
		maxItems: r.maxItems(),
	}
	out := &sink{b: new(strings.Builder), limit: r.maxChars(), color: r.colored()}
	p.pretty(out, v, 0, p.width)
	s := out.b.String()
	switch {
	case out.over:
		s = strings.TrimRight(s, " \n") + "\n" + r.paint(styleNote, "... output truncated at "+group(out.limit)+" characters ("+getHint+")")
	case p.abbreviated:
		s += "\n" + r.paint(styleNote, "(abbreviated: "+getHint+")")
	}
	return s
}

// A sink collects rendered text and counts its visible characters (runes),
// stopping at limit. With a nil builder it only measures: that is how the
// printer asks "does this fit on one line?" at a cost bounded by the width.
type sink struct {
	b     *strings.Builder // nil: measure only
	n     int              // runes written so far
	limit int
	over  bool // limit reached; what follows is dropped
	color bool
}

func (s *sink) measuring() bool { return s.b == nil }

func (s *sink) room() int { return s.limit - s.n }

func (s *sink) put(st style, text string) {
	if s.over || text == "" {
		return
	}
	k := utf8.RuneCountInString(text)
	if k > s.room() {
		if s.b != nil {
			s.write(st, prefixRunes(text, s.room()))
		}
		s.n = s.limit
		s.over = true
		return
	}
	s.n += k
	if s.b != nil {
		s.write(st, text)
	}
}

func (s *sink) write(st style, text string) {
	if text == "" {
		return
	}
	if s.color && st != "" {
		s.b.WriteString(string(st))
		s.b.WriteString(text)
		s.b.WriteString(sgrReset)
		return
	}
	s.b.WriteString(text)
}

// prefixRunes returns the first n runes of s (invalid bytes count as one).
func prefixRunes(s string, n int) string {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}

type printer struct {
	r           *Renderer
	width       int
	maxItems    int
	abbreviated bool // some container was cut at maxItems
}

func isContainer(k transport.Kind) bool {
	switch k {
	case transport.KindList, transport.KindTuple, transport.KindDict, transport.KindSet, transport.KindStruct:
		return true
	}
	return false
}

// brackets returns the text that opens and closes a container.
func brackets(v transport.Value) (string, string) {
	switch v.Kind {
	case transport.KindList:
		return "[", "]"
	case transport.KindTuple:
		return "(", ")"
	case transport.KindDict:
		return "{", "}"
	case transport.KindSet:
		return "set([", "])"
	case transport.KindStruct:
		return structName(v) + "(", ")"
	}
	return "", ""
}

func structName(v transport.Value) string {
	if v.Str == "" {
		return "struct"
	}
	return escapeInline(v.Str)
}

// fieldName is the name of a struct field (held as a String value).
func fieldName(k transport.Value) string {
	if k.Kind == transport.KindString {
		return escapeInline(k.Str)
	}
	return escapeInline(k.Repr())
}

func moreItems(n int) string { return "... " + group(n) + " more items" }

// pretty writes v starting at the current column, which is indent, with
// avail columns left on the line for v and whatever follows it.
func (p *printer) pretty(out *sink, v transport.Value, indent, avail int) {
	if !isContainer(v.Kind) || v.Len() == 0 {
		p.flat(out, v, stylePlain)
		return
	}
	m := &sink{limit: avail}
	if p.flat(m, v, stylePlain); !m.over {
		p.flat(out, v, stylePlain)
		return
	}

	open, close := brackets(v)
	out.put(stylePlain, open)
	out.put(stylePlain, "\n")
	inner := indent + indentStep
	pad := strings.Repeat(" ", inner)
	n := v.Len()
	shown := min(n, p.maxItems)
	for i := 0; i < shown && !out.over; i++ {
		out.put(stylePlain, pad)
		rest := p.width - inner - 1 // the trailing comma
		switch v.Kind {
		case transport.KindDict:
			k, val := v.Items[2*i], v.Items[2*i+1]
			km := &sink{limit: p.width}
			p.flat(km, k, styleKey)
			p.flat(out, k, styleKey)
			out.put(stylePlain, ": ")
			p.pretty(out, val, inner, rest-km.n-2)
		case transport.KindStruct:
			name := fieldName(v.Items[2*i])
			out.put(styleField, name)
			out.put(stylePlain, " = ")
			p.pretty(out, v.Items[2*i+1], inner, rest-utf8.RuneCountInString(name)-3)
		default:
			p.pretty(out, v.Items[i], inner, rest)
		}
		out.put(stylePlain, ",\n")
	}
	if n > shown {
		if !out.measuring() {
			p.abbreviated = true
		}
		out.put(stylePlain, pad)
		out.put(styleNote, moreItems(n-shown))
		out.put(stylePlain, "\n")
	}
	out.put(stylePlain, strings.Repeat(" ", indent))
	out.put(stylePlain, close)
}

// flat writes the one-line repr of v. keyStyle colors strings used as dict
// keys; for everything else it is stylePlain.
func (p *printer) flat(out *sink, v transport.Value, keyStyle style) {
	if out.over {
		return
	}
	switch v.Kind {
	case transport.KindNone:
		out.put(styleKeyword, "None")
	case transport.KindBool:
		if v.Bool {
			out.put(styleKeyword, "True")
		} else {
			out.put(styleKeyword, "False")
		}
	case transport.KindInt:
		if v.Big != nil {
			out.put(styleNumber, v.Big.String())
		} else {
			out.put(styleNumber, strconv.FormatInt(v.Int, 10))
		}
	case transport.KindFloat:
		out.put(styleNumber, formatFloat(v.Float()))
	case transport.KindString, transport.KindBytes:
		st := styleString
		if keyStyle != stylePlain && v.Kind == transport.KindString {
			st = keyStyle
		}
		p.quoted(out, st, v.Str, v.Kind == transport.KindBytes)
	case transport.KindRef:
		repr := v.Repr()
		if repr == "" {
			repr = "<" + v.Str + ">"
		}
		out.put(styleRef, escapeInline(repr))
	case transport.KindList, transport.KindTuple, transport.KindDict, transport.KindSet, transport.KindStruct:
		p.flatContainer(out, v)
	default:
		out.put(styleRef, "<invalid value>")
	}
}

func (p *printer) flatContainer(out *sink, v transport.Value) {
	open, close := brackets(v)
	out.put(stylePlain, open)
	n := v.Len()
	shown := min(n, p.maxItems)
	for i := 0; i < shown && !out.over; i++ {
		if i > 0 {
			out.put(stylePlain, ", ")
		}
		switch v.Kind {
		case transport.KindDict:
			p.flat(out, v.Items[2*i], styleKey)
			out.put(stylePlain, ": ")
			p.flat(out, v.Items[2*i+1], stylePlain)
		case transport.KindStruct:
			out.put(styleField, fieldName(v.Items[2*i]))
			out.put(stylePlain, " = ")
			p.flat(out, v.Items[2*i+1], stylePlain)
		default:
			p.flat(out, v.Items[i], stylePlain)
		}
	}
	if n > shown {
		if !out.measuring() {
			p.abbreviated = true
		}
		out.put(stylePlain, ", ")
		out.put(styleNote, moreItems(n-shown))
	}
	if v.Kind == transport.KindTuple && n == 1 {
		out.put(stylePlain, ",")
	}
	out.put(stylePlain, close)
}

// quoted writes a string or bytes literal as Starlark quotes it. Only as
// much of a long string is quoted as can still be shown.
func (p *printer) quoted(out *sink, st style, s string, isBytes bool) {
	room := out.room()
	if out.measuring() {
		// The literal has at least one rune per 4 bytes, plus quotes.
		if (len(s)+3)/4+2 > room {
			out.over = true
			out.n = out.limit
			return
		}
	} else if len(s) > room {
		// Quote a prefix long enough to overflow what is left, no more.
		if pre := prefixRunes(s, room+1); len(pre) < len(s) {
			s = pre
		}
	}
	out.put(st, syntax.Quote(s, isBytes))
}

// formatFloat formats f as Starlark's float repr does: the shortest
// representation that round-trips, always with a '.' or an exponent.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
