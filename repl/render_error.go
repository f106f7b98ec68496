package repl

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rshell/rshell/transport"
)

// Error renders a remote error as the terminal shows it, ending with "\n".
//
// A runtime error with a call stack becomes a traceback, outermost call
// first as Starlark and Python print them:
//
//	Remote traceback from web1 (most recent call last):
//	  <in[9]>:1:6 in <toplevel>
//	    z = x/y
//	Error: floating-point division by zero
//
// A syntax or resolve error that says where it happened shows that line
// with a caret under the column:
//
//	  File <in[3]>, line 1
//	    x = = 1
//	        ^
//	SyntaxError: got '=', want primary expression
//
// Anything else (a cancelled chunk, a passed deadline, a refused request)
// is the one line "Error: msg". host may be empty. All remote text is
// escaped.
func (r *Renderer) Error(host string, err *transport.RemoteError) string {
	if err == nil {
		return ""
	}
	info := err.Info
	var b strings.Builder

	if len(info.Frames) > 0 {
		header := "Traceback (most recent call last):"
		if host != "" {
			header = "Remote traceback from " + escapeInline(host) + " (most recent call last):"
		}
		b.WriteString(r.paint(styleHeader, header))
		b.WriteByte('\n')
		for _, f := range info.Frames {
			b.WriteString("  ")
			if f.File == "" {
				b.WriteString(r.paint(styleLoc, "<builtin>"))
			} else {
				loc := escapeInline(f.File) + ":" + strconv.Itoa(f.Line)
				if f.Col > 0 {
					loc += ":" + strconv.Itoa(f.Col)
				}
				b.WriteString(r.paint(styleLoc, loc))
			}
			b.WriteString(" in ")
			b.WriteString(r.paint(styleFunc, escapeInline(f.Func)))
			b.WriteByte('\n')
			if src := strings.TrimSpace(f.Source); src != "" {
				b.WriteString("    ")
				b.WriteString(escapeInline(src))
				b.WriteByte('\n')
			}
			if f.Repeat > 0 {
				b.WriteString("  ")
				b.WriteString(transport.RepeatNote(f.Repeat))
				b.WriteByte('\n')
			}
		}
	} else if (info.Kind == transport.KindSyntax || info.Kind == transport.KindResolve) && info.Line > 0 {
		b.WriteString("  File ")
		b.WriteString(r.paint(styleLoc, escapeInline(info.File)))
		b.WriteString(", line ")
		b.WriteString(r.paint(styleLoc, strconv.Itoa(info.Line)))
		b.WriteByte('\n')
		if strings.TrimSpace(info.SrcLine) != "" {
			src, pad := caretLine(info.SrcLine, info.Col)
			b.WriteString("    ")
			b.WriteString(src)
			b.WriteByte('\n')
			if info.Col > 0 {
				b.WriteString("    ")
				b.WriteString(pad)
				b.WriteString(r.paint(styleCaret, "^"))
				b.WriteByte('\n')
			}
		}
	}

	label := "Error:"
	if info.Kind == transport.KindSyntax {
		label = "SyntaxError:"
	}
	msg := strings.TrimRight(Escape(info.Msg), "\n")
	if msg == "" {
		msg = info.Kind + " error"
	}
	b.WriteString(r.paint(styleErr, label))
	b.WriteByte(' ')
	b.WriteString(r.paint(styleErrMsg, msg))
	b.WriteByte('\n')
	return b.String()
}

// caretLine returns the source line as shown (leading space trimmed,
// escaped) and the padding that puts a caret under column col (1-based, in
// runes, as Starlark counts). Tabs before the column stay tabs in the
// padding so the caret lines up however the terminal expands them.
func caretLine(line string, col int) (shown, pad string) {
	line = strings.TrimRight(line, "\r\n")
	trimmed := strings.TrimLeft(line, " \t\f")
	skip := utf8.RuneCountInString(line) - utf8.RuneCountInString(trimmed)
	trimmed = strings.TrimRight(trimmed, " \t\f")

	before := max(col-1-skip, 0)
	prefix := prefixRunes(trimmed, before)
	var p strings.Builder
	for i := 0; i < len(prefix); {
		_, w := utf8.DecodeRuneInString(prefix[i:])
		seg := prefix[i : i+w]
		i += w
		if seg == "\t" {
			p.WriteByte('\t')
			continue
		}
		// An escaped rune or byte is shown as several characters.
		p.WriteString(strings.Repeat(" ", utf8.RuneCountInString(escapeInline(seg))))
	}
	// Columns past the end of the line (an error at end of line) are kept,
	// so the caret sits just after the last character.
	if extra := before - utf8.RuneCountInString(prefix); extra > 0 {
		p.WriteString(strings.Repeat(" ", min(extra, 1)))
	}
	return escape(trimmed, false), p.String()
}
