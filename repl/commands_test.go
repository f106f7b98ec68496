package repl

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/rshell/rshell/transport"
)

func TestCommandTableSorted(t *testing.T) {
	if !sort.SliceIsSorted(commands, func(i, j int) bool { return commands[i].name < commands[j].name }) {
		t.Fatal("the command table must stay sorted: lookupCommand searches it")
	}
	for _, c := range commands {
		if c.run == nil || c.summary == "" {
			t.Errorf(":%s lacks run or summary", c.name)
		}
		if lookupCommand(c.name) == nil {
			t.Errorf("lookup :%s", c.name)
		}
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"hist": "history", "us": "use", "lod": "load", "pong": "ping", "nss": "ns", "quti": "quit",
		"xxxxxxxxxxxxxx": "",
	} {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance = %d", d)
	}
}

func TestToJSONErrors(t *testing.T) {
	for _, c := range []struct {
		v    transport.Value
		want string
	}{
		{transport.Dict(transport.String("a"), transport.List(transport.Float(math.Inf(1)))), `v["a"][0] is +Inf`},
		{transport.Dict(transport.Tuple(), transport.Int(1)), "tuple key"},
		{transport.Struct("struct", transport.String("f"), transport.Ref("function", "<function f>")), "v.f is a function"},
		{transport.String("\xff"), "not valid UTF-8"},
	} {
		_, err := toJSON(c.v, "v")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("toJSON: %v, want %q", err, c.want)
		}
	}
	b, err := toJSON(transport.Dict(), "v")
	if err != nil || string(b) != "{}\n" {
		t.Errorf("empty dict: %q %v", b, err)
	}
}

func TestContPainter(t *testing.T) {
	var p contPainter
	p.set("web1> ")
	if got := string(p.Paint([]rune("x = 1"), 5)); got != "x = 1" {
		t.Errorf("one line: %q", got)
	}
	got := string(p.Paint([]rune("def f():\n    return 1"), 0))
	if got != "def f():\n  ...     return 1" {
		t.Errorf("recalled: %q", got)
	}
	// The next paint first moves up over the row drawn above.
	if got := string(p.Paint([]rune("x"), 1)); got != "\x1b[1A\r\x1b[Jweb1> x" {
		t.Errorf("after: %q", got)
	}
	// Submitted (trailing newline): no continuation prompt after it.
	p.Paint([]rune("a\nb"), 0)
	if got := string(p.Paint([]rune("a\nb\n"), 0)); got != "\x1b[1A\r\x1b[Jweb1> a\n  ... b\n" {
		t.Errorf("submitted: %q", got)
	}
	if got := string(p.Paint(nil, 0)); got != "" {
		t.Errorf("after submit: %q", got)
	}
}

func TestSplitHostSpec(t *testing.T) {
	for in, want := range map[string]string{
		"web1":              "web1 web1:18812",
		"web1:2000":         "web1:2000 web1:2000",
		"db=10.0.0.5":       "db 10.0.0.5:18812",
		"::1":               "::1 [::1]:18812",
		"[::1]:18812":       "::1 [::1]:18812",
		"w=127.0.0.1:18812": "w 127.0.0.1:18812",
	} {
		n, a := splitHostSpec(in)
		if n+" "+a != want {
			t.Errorf("splitHostSpec(%q) = %q %q, want %q", in, n, a, want)
		}
	}
}
