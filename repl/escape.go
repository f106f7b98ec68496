package repl

import (
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Escape makes remote text safe to write to a terminal. Every byte below
// 0x20 except '\n' and '\t', DEL (0x7f), the C1 controls U+0080–U+009F and
// every byte that is not part of valid UTF-8 is replaced by a visible escape:
// \xNN for single bytes, \uNNNN for C1 controls. An escape sequence such as
// "\x1b]0;title\x07" therefore appears as text and never reaches the
// terminal. Backslashes are left alone, so ordinary output (paths, regexps)
// reads as written.
func Escape(s string) string { return escape(s, false) }

// escapeInline is Escape for text shown inside one line of a value or a
// traceback header: '\n' and '\t' are escaped too.
func escapeInline(s string) string { return escape(s, true) }

func escape(s string, inline bool) string {
	// Fast path: nothing to do for the usual printable text.
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if needsEscapeASCII(c, inline) {
				break
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w == 1) || isC1(r) {
			break
		}
		i += w
	}
	if i == len(s) {
		return s
	}

	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if needsEscapeASCII(c, inline) {
				switch c {
				case '\n':
					b.WriteString(`\n`)
				case '\t':
					b.WriteString(`\t`)
				default:
					b.WriteString(`\x`)
					b.WriteByte(hexDigits[c>>4])
					b.WriteByte(hexDigits[c&0xf])
				}
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		case isC1(r):
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[(r>>4)&0xf])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}

func needsEscapeASCII(c byte, inline bool) bool {
	if c == '\n' || c == '\t' {
		return inline
	}
	return c < 0x20 || c == 0x7f
}

func isC1(r rune) bool { return r >= 0x80 && r <= 0x9f }
