package session

import (
	"strings"
	"testing"
)

// An expression chunk is compiled once and reused while every name in it
// resolves as it did; the reuse never changes what the chunk means.
func TestRepeatedExpressionsAreCompiledOnce(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "x = 1")
	if v := evalOK(t, s, "x + len([1, 2])"); v.Int != 3 {
		t.Fatalf("first: %v", v)
	}
	e := s.exprs["x + len([1, 2])"]
	if e == nil {
		t.Fatal("the expression was not kept")
	}
	evalOK(t, s, "x = 10") // a new value: read at run time
	if v := evalOK(t, s, "x + len([1, 2])"); v.Int != 12 || s.exprs["x + len([1, 2])"] != e {
		t.Fatalf("second: %v (recompiled: %v)", v, s.exprs["x + len([1, 2])"] != e)
	}
	// A global that shadows a builtin changes what the name means.
	evalOK(t, s, "def len(v):\n    return 100")
	if v := evalOK(t, s, "x + len([1, 2])"); v.Int != 110 {
		t.Fatalf("after len was shadowed: %v, want 110", v)
	}

	// Its errors show the line, the first time and the next.
	evalOK(t, s, "y = 0")
	for i := range 2 {
		ei := evalErr(t, s, "x // y")
		if len(ei.Frames) == 0 || ei.Frames[len(ei.Frames)-1].Source != "x // y" {
			t.Fatalf("error %d: frames %+v", i, ei.Frames)
		}
	}
	// A lambda is code that outlives the chunk: not kept here.
	if v := evalOK(t, s, "(lambda: 7)()"); v.Int != 7 || s.exprs["(lambda: 7)()"] != nil {
		t.Fatalf("lambda chunk: %v, kept %v", v, s.exprs["(lambda: 7)()"] != nil)
	}
	// Reset forgets the globals, and what was compiled against them.
	s.Reset()
	if ei := evalErr(t, s, "x + len([1, 2])"); !strings.Contains(ei.Msg, "undefined: x") {
		t.Fatalf("after Reset: %s", ei.Msg)
	}
	// The cache is bounded.
	for i := range 3 * exprCacheSize {
		evalOK(t, s, strings.Repeat("1 + ", i)+"1")
	}
	if n := len(s.exprs); n > exprCacheSize {
		t.Fatalf("%d expressions kept, want at most %d", n, exprCacheSize)
	}
}
