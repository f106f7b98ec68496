package session

import (
	"context"
	"strings"
	"testing"

	"github.com/rshell/rshell/transport"
)

func restoreInto(t *testing.T, from *Session) (*Session, []string) {
	t.Helper()
	d := from.Changes()
	to := New(Options{})
	from.mu.Lock()
	sources := map[string]string{}
	for k, v := range from.sources {
		sources[k] = v
	}
	from.mu.Unlock()
	return to, to.Restore(d.Changed, sources)
}

func TestChangesAndRestore(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "x = 21\nx *= 2")
	evalOK(t, s, `scores = {"Foo": 11, "Bar": 100}`)
	evalOK(t, s, "def fib(n):\n    out = []\n    a, b = 1, 1\n    for _ in range(n):\n        out.append(a)\n        a, b = b, a + b\n    return out")
	evalOK(t, s, "double = lambda v: v * 2")
	evalOK(t, s, "alias = fib")
	evalOK(t, s, "def outer():\n    def inner():\n        return 1\n    return inner\nnested = outer()")
	evalOK(t, s, "it = os")
	evalOK(t, s, "mixed = [1, len]")

	to, lost := restoreInto(t, s)
	wantValue(t, evalOK(t, to, "x"), transport.Int(42))
	wantValue(t, evalOK(t, to, "scores"), transport.Dict(transport.String("Foo"), transport.Int(11), transport.String("Bar"), transport.Int(100)))
	wantValue(t, evalOK(t, to, "fib(5)"), transport.List(transport.Int(1), transport.Int(1), transport.Int(2), transport.Int(3), transport.Int(5)))
	wantValue(t, evalOK(t, to, "alias(3)"), transport.List(transport.Int(1), transport.Int(1), transport.Int(2)))
	wantValue(t, evalOK(t, to, "double(21)"), transport.Int(42))
	joined := strings.Join(lost, "\n")
	for _, name := range []string{"nested", "it", "mixed"} {
		if !strings.Contains(joined, name+" (") {
			t.Errorf("%s not reported as not restored: %v", name, lost)
		}
	}
	if strings.Contains(joined, "fib") || strings.Contains(joined, "double") {
		t.Errorf("restorable names reported lost: %v", lost)
	}
	// A traceback through a restored function still names its chunk and line.
	_, ei := to.Eval(context.Background(), "fib(None)", "", nil)
	if ei == nil {
		t.Fatal("fib(None) succeeded")
	}
	var found bool
	for _, f := range ei.Frames {
		if f.Func == "fib" && f.Line == 4 && strings.TrimSpace(f.Source) == "for _ in range(n):" {
			found = true
		}
	}
	if !found {
		t.Fatalf("frames %+v", ei.Frames)
	}
}

func TestChangesReportsOnlyWhatChanged(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "a = 1\nb = [1]\nc = 'x'")
	if d := s.Changes(); len(d.Changed) != 3 {
		t.Fatalf("first: %+v", d)
	}
	if d := s.Changes(); !d.Empty() {
		t.Fatalf("nothing changed, got %+v", d)
	}
	evalOK(t, s, "b.append(2)")
	d := s.Changes()
	if len(d.Changed) != 1 || d.Changed[0].Name != "b" {
		t.Fatalf("mutation: %+v", d)
	}
	evalOK(t, s, "c = None\nc = 'x'")
	evalOK(t, s, "a = 2")
	if d := s.Changes(); len(d.Changed) != 1 || d.Changed[0].Name != "a" {
		t.Fatalf("rebinding: %+v", d)
	}
	s.Reset()
	evalOK(t, s, "z = 1")
	d = s.Changes()
	if !d.Reset || len(d.Changed) != 1 || d.Changed[0].Name != "z" {
		t.Fatalf("after reset: %+v", d)
	}
	evalOK(t, s, "z = 1\n_ = 0")
}

func TestChangesFollowsFunctionsAndAliases(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "log = []\nother = {}\nsame = other\ndef add(v):\n    log.append(v)\ndef wrap(v):\n    add(v)")
	s.Changes()
	// The chunk names only wrap; wrap names add; add mutates log.
	evalOK(t, s, "wrap(1)")
	d := s.Changes()
	if len(d.Changed) != 1 || d.Changed[0].Name != "log" {
		t.Fatalf("through functions: %+v", d.Changed)
	}
	// A dict bound to two names changes under both.
	evalOK(t, s, "same['k'] = 1")
	d = s.Changes()
	if len(d.Changed) != 2 || d.Changed[0].Name != "other" || d.Changed[1].Name != "same" {
		t.Fatalf("aliases: %+v", d.Changed)
	}
	// Put counts too.
	if ei := s.Put("put_in", transport.Int(1)); ei != nil {
		t.Fatal(ei.Msg)
	}
	if d = s.Changes(); len(d.Changed) != 1 || d.Changed[0].Name != "put_in" {
		t.Fatalf("put: %+v", d.Changed)
	}
	// _ is never stored.
	evalOK(t, s, "1 + 1")
	if d = s.Changes(); !d.Empty() {
		t.Fatalf("1 + 1 changed %+v", d)
	}
}

func BenchmarkChangesWithBigDict(b *testing.B) {
	s := New(Options{})
	if _, ei := s.Eval(context.Background(), "big = {str(i): [i, i, i] for i in range(100000)}\nn = 0", "", nil); ei != nil {
		b.Fatal(ei.Msg)
	}
	s.Changes()
	b.ReportAllocs()
	for b.Loop() {
		if _, ei := s.Eval(context.Background(), "n = n + 1", "", nil); ei != nil {
			b.Fatal(ei.Msg)
		}
		if d := s.Changes(); len(d.Changed) != 1 && len(d.Changed) != 2 {
			b.Fatalf("changed %d", len(d.Changed))
		}
	}
}

// TestTouchOnlyWhatAChunkCanChange: a chunk without calls and with plain
// names on the left can change only the names it binds, so reading a big
// value does not make the next Changes encode it again.
func TestTouchOnlyWhatAChunkCanChange(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "big = {'k': [1, 2]}\nl = [0]\ndef f(x):\n    return x")
	s.Changes()
	cases := []struct {
		src  string
		want []string
	}{
		{"big", nil},
		{"[v for v in big]", nil},
		{"big['k'][0] + 1", nil},
		{"len(big) + len(str(sorted(big)))", nil},
		{"[len(l) for len in [l.append]]", []string{"l"}},
		{"(lambda len: len(l))(str)", []string{"l"}},
		{"len(l.pop())", []string{"l"}},
		{"x, (y, [z]) = 1, (2, [3])", []string{"x", "y", "z"}},
		{"n = 0\nn += 1", []string{"n"}},
		{"def g():\n    return 1", []string{"g"}},
		{"l[0] = 5", []string{"l"}},
		{"f(big)", []string{"big", "f"}},
		{"for l[0] in [7]:\n    pass", []string{"l"}},
	}
	for _, c := range cases {
		evalOK(t, s, c.src)
		got := s.dur.touched
		for _, name := range c.want {
			if !got[name] {
				t.Errorf("%q: %q not touched (touched %v)", c.src, name, got)
			}
		}
		if c.want == nil && len(got) != 0 {
			t.Errorf("%q touched %v, want nothing", c.src, got)
		}
		d := s.Changes()
		if c.src == "l[0] = 5" && (len(d.Changed) != 1 || d.Changed[0].Name != "l") {
			t.Errorf("%q: changes %+v", c.src, d.Changed)
		}
	}
}
