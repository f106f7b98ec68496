package repl

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"keep\nnewlines\tand tabs", "keep\nnewlines\tand tabs"},
		{"日本語 🎉", "日本語 🎉"},
		{`back\slash`, `back\slash`},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"cr\r", `cr\x0d`},
		{"nul\x00 del\x7f", `nul\x00 del\x7f`},
		{"c1 \u0085 csi \u009b[2J", `c1 \u0085 csi \u009b[2J`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"truncated \xe6\x97", `truncated \xe6\x97`},
		{"\u00a0nbsp ok", "\u00a0nbsp ok"},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := escapeInline("a\nb\tc\x1b"), `a\nb\tc\x1b`; got != want {
		t.Errorf("escapeInline = %q, want %q", got, want)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "abc", "\x1b[2J", "\xff", "\u0085", "a\nb\tc", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, inline := range []bool{false, true} {
			out := escape(s, inline)
			if !utf8.ValidString(out) {
				t.Fatalf("escape(%q) = %q: invalid UTF-8", s, out)
			}
			for _, c := range out {
				if (c < 0x20 && (inline || c != '\n' && c != '\t')) || c == 0x7f || isC1(c) {
					t.Fatalf("escape(%q, %v) = %q: contains %U", s, inline, out, c)
				}
			}
		}
	})
}
