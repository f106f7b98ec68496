package repl

import (
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rshell/rshell/transport"
)

// checkRenderGolden compares got with testdata/render/name, or rewrites the
// file with -update. Colors are stored with ESC shown as "␛" so the files
// read well in a diff.
func checkRenderGolden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, "\x1b", "␛")
	path := filepath.Join("testdata", "render", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./repl/ -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func bigPow(base, exp int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
}

func intList(n int) transport.Value {
	items := make([]transport.Value, n)
	for i := range items {
		items[i] = transport.Int(int64(i))
	}
	return transport.List(items...)
}

func bigDict(n int) transport.Value {
	kv := make([]transport.Value, 0, 2*n)
	for i := 0; i < n; i++ {
		kv = append(kv, transport.String("key"+strconv.Itoa(i)), transport.Int(int64(i)))
	}
	return transport.Dict(kv...)
}

var (
	s   = transport.String
	i64 = transport.Int
)

func fibRef() transport.Value { return transport.Ref("function", "<function fib>") }

// renderValueCases are rendered into testdata/render/value_NAME.golden.
var renderValueCases = []struct {
	name string
	r    Renderer
	v    transport.Value
}{
	{"scalars", Renderer{}, transport.List(
		transport.None(), transport.Bool(true), transport.Bool(false),
		i64(0), i64(-42), i64(math.MaxInt64), transport.BigInt(bigPow(2, 100)),
		transport.BigInt(new(big.Int).Neg(bigPow(10, 30))),
	)},
	{"floats", Renderer{}, transport.List(
		transport.Float(1), transport.Float(0.1), transport.Float(1e100), transport.Float(1.5e-7),
		transport.Float(math.Inf(1)), transport.Float(math.Inf(-1)), transport.Float(math.NaN()),
		transport.Float(math.Copysign(0, -1)), transport.Float(123456789012345680),
	)},
	{"strings", Renderer{Width: 200}, transport.List(
		s(""), s("hello"), s(`quote " and backslash \`), s("tab\tnewline\n"),
		s("日本語 ünïcödé 🎉"), s("\x1b[2J clear screen"), s("\x1b]0;title\x07"),
		s("invalid \xff\xfe utf-8"), s("C1 \u0085 \u009b bidi \u202e"), s("bell\a del\x7f"),
	)},
	{"bytes", Renderer{}, transport.List(
		transport.Bytes("abc"), transport.Bytes("\x00\x01\xff"), transport.Bytes("\x1b[31mred"),
	)},
	{"containers", Renderer{}, transport.List(
		transport.List(), transport.Tuple(), transport.Tuple(i64(1)), transport.Tuple(i64(1), s("a")),
		transport.Dict(), transport.Dict(s("k"), i64(1), i64(2), transport.None()),
		transport.Set(), transport.Set(i64(1), i64(2)),
	)},
	{"struct", Renderer{}, transport.Struct("struct",
		s("sysname"), s("Linux"), s("nodename"), s("web1"), s("machine"), s("x86_64"))},
	{"struct_ctor", Renderer{}, transport.Struct("Point", s("x"), i64(1), s("y"), i64(2))},
	{"ref", Renderer{}, transport.Dict(s("fib"), fibRef(), s("mod"), transport.Ref("module", "<module os>"),
		s("evil"), transport.Ref("function", "<function \x1b[2J>"))},
	{"nested", Renderer{}, transport.Dict(
		s("Foo"), i64(11), s("Bar"), transport.List(i64(1), transport.Tuple(i64(2), i64(3)), transport.Dict(s("x"), transport.Set(s("y")))))},
	{"wide_40", Renderer{Width: 40}, transport.Dict(
		s("name"), s("web1"),
		s("scores"), transport.List(i64(10), i64(20), i64(30), i64(40), i64(50), i64(60), i64(70), i64(80), i64(90)),
		s("short"), transport.List(i64(1), i64(2)),
		s("config"), transport.Dict(s("listen"), s(":18812"), s("tls"), transport.Bool(true), s("token_file"), s("/home/ops/.config/rshell/token")),
		s("host"), transport.Struct("struct", s("sysname"), s("Linux"), s("release"), s("6.1.0-13-amd64")),
		s("one"), transport.Tuple(s("a long string that will not fit in forty columns")),
	)},
	{"wide_40_color", Renderer{Width: 40, Color: true}, transport.Dict(
		s("scores"), transport.List(i64(10), i64(20), i64(30), i64(40), i64(50), i64(60), i64(70), i64(80), i64(90)),
		s("ok"), transport.Bool(true), s("none"), transport.None(), s("fib"), fibRef(), i64(1), transport.Float(2.5),
	)},
	{"color", Renderer{Color: true}, transport.Dict(
		s("s"), s("str"), s("n"), i64(1), s("f"), transport.Float(1.5), s("b"), transport.Bool(false),
		s("none"), transport.None(), s("ref"), fibRef(), s("st"), transport.Struct("struct", s("a"), i64(1)),
		i64(7), transport.Bytes("x"))},
	{"big_dict", Renderer{}, bigDict(100000)},
	{"big_list_items_5", Renderer{MaxItems: 5}, transport.List(intList(1000), intList(3))},
	{"max_chars", Renderer{MaxChars: 300}, intList(1000)},
	{"max_chars_string", Renderer{MaxChars: 50, Color: true}, s(strings.Repeat("abcdefghij", 100000))},
	{"unicode_pretty", Renderer{Width: 30}, transport.List(s("日本語"), s("ünïcödé"), s("🎉🎉🎉"), s("\xff\xfe"), s("more text here"))},
}

func TestRenderValueGolden(t *testing.T) {
	for _, tc := range renderValueCases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			got := r.Value(tc.v)
			checkRenderGolden(t, "value_"+tc.name+".golden", got+"\n")
			if !r.Color && strings.Contains(got, "\x1b") {
				t.Errorf("uncolored output contains ESC: %q", got)
			}
		})
	}
}

// TestRenderValueSafe checks that no rendering, colored or not, lets a
// control character from the value reach the terminal.
func TestRenderValueSafe(t *testing.T) {
	evil := "\x1b[2J\x1b]0;x\x07\r\x00\x7f\u009b\xff"
	v := transport.List(s(evil), transport.Bytes(evil), transport.Ref(evil, evil),
		transport.Struct(evil, s(evil), s(evil)), transport.Dict(s(evil), s(evil)))
	for _, color := range []bool{false, true} {
		r := Renderer{Color: color, Width: 20}
		got := r.Value(v)
		if color {
			got = stripSGR(got)
		}
		for _, c := range got {
			if c < 0x20 && c != '\n' || c == 0x7f || isC1(c) || c == '\uFFFD' {
				t.Errorf("color=%v: control %U in %q", color, c, got)
			}
		}
	}
}

// stripSGR removes the SGR sequences the renderer writes.
func stripSGR(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], 'm')
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		s = s[i+j+1:]
	}
}

func TestRenderColorSameText(t *testing.T) {
	for _, tc := range renderValueCases {
		plain, colored := tc.r, tc.r
		plain.Color, colored.Color = false, true
		if p, c := plain.Value(tc.v), stripSGR(colored.Value(tc.v)); p != c {
			t.Errorf("%s: colored text differs from plain:\n%s\n---\n%s", tc.name, p, c)
		}
	}
}

func TestRenderPrettyFitsWidth(t *testing.T) {
	v := renderValueCases[9].v // wide_40
	for _, w := range []int{20, 40, 60, 100} {
		r := Renderer{Width: w}
		out := r.Value(v)
		for _, line := range strings.Split(out, "\n") {
			// Only lines holding a single long scalar may overflow.
			if n := len([]rune(line)); n > w && !strings.Contains(line, `"`) {
				t.Errorf("width %d: line of %d runes: %q", w, n, line)
			}
		}
	}
}

func TestRenderHugeIsBounded(t *testing.T) {
	// 100k elements, each container far wider than the terminal: the work
	// must depend on MaxItems, not on the size.
	v := transport.List(bigDict(100000), intList(100000), s(strings.Repeat("x", 1<<22)))
	r := Renderer{}
	got := r.Value(v)
	if len(got) > 30000 {
		t.Errorf("output is %d bytes", len(got))
	}
	if !strings.Contains(got, "99,900 more items") {
		t.Errorf("missing abbreviation note:\n%s", got)
	}
}

func BenchmarkRenderBigDict(b *testing.B) {
	v := bigDict(100000)
	r := Renderer{Color: true}
	for b.Loop() {
		r.Value(v)
	}
}

func TestRenderOutput(t *testing.T) {
	text := "line 1\n\tindented\x1b[2J\r\n"
	r := Renderer{}
	if got, want := r.Output(text), "line 1\n\tindented\\x1b[2J\\x0d\n"; got != want {
		t.Errorf("Output = %q, want %q", got, want)
	}
	r.Raw = true
	if got := r.Output(text); got != text {
		t.Errorf("raw Output = %q, want %q", got, text)
	}
}

func TestRenderNoticeFail(t *testing.T) {
	r := Renderer{}
	if got, want := r.Notice("lost %s (%v); reconnecting…", "web1", "connection reset"), "! lost web1 (connection reset); reconnecting…\n"; got != want {
		t.Errorf("Notice = %q, want %q", got, want)
	}
	if got, want := r.Fail("no host %q\n", "db\x1b9"), "Error: no host \"db\\x1b9\"\n"; got != want {
		t.Errorf("Fail = %q, want %q", got, want)
	}
	r.Color = true
	checkRenderGolden(t, "notice_fail_color.golden",
		r.Notice("web1 is back — session resumed")+r.Fail("unknown command :foo"))
}

func TestGroup(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 99900: "99,900", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}
