package repl

import (
	"strings"
	"testing"
)

// chunkerCases feed lines one at a time; want[i] is whether the chunk is
// complete after line i. Each case ends with its chunk complete.
var chunkerCases = []struct {
	name  string
	lines []string
	want  []bool
}{
	{"simple", []string{"x = 1"}, []bool{true}},
	{"expression", []string{"x * 7"}, []bool{true}},
	{"empty", []string{""}, []bool{true}},
	{"comment", []string{"# just a comment"}, []bool{true}},
	{"def", []string{"def f():", "    return 1", ""}, []bool{false, false, true}},
	{"def two lines", []string{"def f(n):", "    x = n * 2", "    return x", "   "}, []bool{false, false, false, true}},
	{"if else", []string{"if x:", "    y = 1", "else:", "    y = 2", ""}, []bool{false, false, false, false, true}},
	{"for", []string{"for i in range(3):", "    print(i)", ""}, []bool{false, false, true}},
	{"while", []string{"while x < 10:", "    x += 1", ""}, []bool{false, false, true}},
	{"one-line if", []string{"if x: print(1)"}, []bool{true}},
	{"block then statement", []string{"def f():", "    return 1", "f()", ""}, []bool{false, false, false, true}},
	{"def without body", []string{"def f():", ""}, []bool{false, true}},
	{"list", []string{"[1,", "2]"}, []bool{false, true}},
	{"nested brackets", []string{"f(a, [1,", "  {2: (3,", "  4)}],", " b)"}, []bool{false, false, false, true}},
	{"blank inside brackets", []string{"x = [", "", "1]"}, []bool{false, false, true}},
	{"brackets in block", []string{"def f():", "    return [1,", "        2]", ""}, []bool{false, false, false, true}},
	{"dict with colon", []string{"d = {", "  \"a\":", "  1}"}, []bool{false, false, true}},
	{"triple string", []string{`s = """first`, "", "second", `third"""`}, []bool{false, false, false, true}},
	{"triple single quotes", []string{"s = '''a", "b''' + 'c'"}, []bool{false, true}},
	{"triple with quotes inside", []string{`s = """a "quoted" ""`, `x"""`}, []bool{false, true}},
	{"triple escaped quote", []string{`s = """a \"""`, `"""`}, []bool{false, true}},
	{"colon in string", []string{`print("if x:")`}, []bool{true}},
	{"colon in comment", []string{"x = 1  # note:"}, []bool{true}},
	{"bracket in string", []string{`s = "(["`}, []bool{true}},
	{"bracket in comment", []string{"x = 1 # (["}, []bool{true}},
	{"lambda", []string{"f = lambda x: x"}, []bool{true}},
	{"backslash", []string{"x = 1 + \\", "    2"}, []bool{false, true}},
	{"backslash twice", []string{"x = 1 + \\", "  2 + \\", "  3"}, []bool{false, false, true}},
	{"string backslash newline", []string{`s = "abc\`, `def"`}, []bool{false, true}},
	{"syntax error", []string{"x = = 1"}, []bool{true}},
	{"syntax error in brackets", []string{"f(1 2"}, []bool{true}},
	{"syntax error after brackets", []string{"f(1,", "2 3"}, []bool{false, true}},
	{"syntax error in block", []string{"if x:", "    y = = 1"}, []bool{false, true}},
	{"syntax error earlier in block", []string{"if x:", "    y = 1 +", "    z"}, []bool{false, false, true}},
	{"brackets in if", []string{"if x:", "  y = (1,", "  2)", ""}, []bool{false, false, false, true}},
	{"unclosed one-quote string", []string{`x = "abc`}, []bool{true}},
	{"stray close", []string{"x = )"}, []bool{true}},
	{"else alone", []string{"else:"}, []bool{true}},
	{"unexpected indent", []string{"    x = 1"}, []bool{true}},
	{"incomplete expression", []string{"x = 1 +"}, []bool{true}},
	{"raw string", []string{`r = r"\d+(" + "x"`}, []bool{true}},
	{"bytes", []string{`b = b"\x00(" `}, []bool{true}},
}

func TestChunker(t *testing.T) {
	for _, tc := range chunkerCases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.lines) != len(tc.want) {
				t.Fatalf("bad case: %d lines, %d wants", len(tc.lines), len(tc.want))
			}
			var c Chunker
			if c.Pending() {
				t.Fatal("zero Chunker is pending")
			}
			for i, line := range tc.lines {
				if got := c.Add(line); got != tc.want[i] {
					t.Fatalf("after %q: complete = %v, want %v (text %q)", tc.lines[:i+1], got, tc.want[i], c.Text())
				}
				if !c.Pending() {
					t.Fatal("not pending after Add")
				}
				src := strings.Join(tc.lines[:i+1], "\n")
				if got := c.Text(); got != src {
					t.Fatalf("Text = %q, want %q", got, src)
				}
				if got := NeedsMore(src); got != !tc.want[i] {
					t.Fatalf("NeedsMore(%q) = %v, want %v", src, got, !tc.want[i])
				}
			}
			c.Reset()
			if c.Pending() || c.Text() != "" {
				t.Fatal("Reset left lines behind")
			}
		})
	}
}

// TestChunkerPaste: text pasted into the prompt arrives line by line; each
// statement is a chunk of its own, like the script `x = 6` then `x * 7`.
func TestChunkerPaste(t *testing.T) {
	paste := "x = 6\nx * 7\ndef f(n):\n    return n + 1\n\nf(x)\ns = \"\"\"a\nb\"\"\"\n"
	want := []string{"x = 6", "x * 7", "def f(n):\n    return n + 1\n", "f(x)", "s = \"\"\"a\nb\"\"\"", ""}
	var got []string
	var c Chunker
	for _, line := range strings.Split(paste, "\n") {
		if c.Add(line) {
			got = append(got, c.Text())
			c.Reset()
		}
	}
	if c.Pending() {
		t.Errorf("left pending: %q", c.Text())
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("chunks = %q, want %q", got, want)
	}
}

// TestChunkerLongPaste: a long bracketed paste completes, in linear-ish time.
func TestChunkerLongPaste(t *testing.T) {
	var c Chunker
	if c.Add("data = [") {
		t.Fatal("complete too early")
	}
	for i := 0; i < 20000; i++ {
		if c.Add("    1,") {
			t.Fatalf("complete at line %d", i)
		}
	}
	if !c.Add("]") {
		t.Fatal("not complete after closing bracket")
	}
	// A real error in a long paste still completes the chunk eventually.
	c.Reset()
	c.Add("data = [")
	c.Add("    1 2,")
	done := false
	for i := 0; i < 200 && !done; i++ {
		done = c.Add("    1,")
	}
	if !done {
		t.Fatal("syntax error in a long paste never completed the chunk")
	}
}

func FuzzChunker(f *testing.F) {
	for _, tc := range chunkerCases {
		f.Add(strings.Join(tc.lines, "\n"))
	}
	for _, s := range []string{"", "\\", "'''", "\"\\", "(\n\n", "def f():\n", "x = '\\\n", "\xff(", "#\\", "if x:\n  y\n\n",
		"\x00(", "#\x00\n(", "\\\r", "x = 1\r(", "def f():\r  return 1\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		more := NeedsMore(src)
		lines := strings.Split(src, "\n")
		// The line scanner must agree with Starlark's: source that parses
		// has no open bracket or string. (A final backslash may parse:
		// Starlark takes a trailing "\r" for a newline.)
		if _, err := chunkOptions.Parse("<fuzz>", src, 0); err == nil {
			var sc chunkScan
			for _, line := range lines {
				sc.line(line)
			}
			if sc.depth > 0 || sc.quote != 0 {
				t.Errorf("valid source %q scanned as open: %+v", src, sc)
			}
		}
		if len(lines) > 64 {
			return // the Chunker parses long chunks only now and then
		}
		var c Chunker
		var complete bool
		for _, line := range lines {
			complete = c.Add(line)
		}
		if complete == more {
			t.Errorf("Chunker complete = %v but NeedsMore = %v for %q", complete, more, src)
		}
		if c.Text() != src {
			t.Errorf("Text = %q, want %q", c.Text(), src)
		}
	})
}
