package session

import (
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// exprCacheSize bounds the compiled expressions a session keeps.
const exprCacheSize = 64

// exprEntry is a chunk that is one expression, compiled once: polling the
// same expression (`len(q)`, `1+1`) skips the parse, resolve and compile,
// two thirds of a trivial chunk's allocations.
type exprEntry struct {
	f     *syntax.File // the parsed chunk, for touch
	fn    *starlark.Function
	file  string   // the name it was compiled under, in its positions
	names []string // every identifier in it
	had   []bool   // whether each was a global when it was compiled
}

// cachedExpr returns the compiled chunk src, if it is still valid: each of
// its identifiers resolves as it did (a global then is a global now, and
// a builtin then has not been shadowed by a global since).
func (s *Session) cachedExpr(src string) *exprEntry {
	e := s.exprs[src]
	if e == nil {
		return nil
	}
	for i, name := range e.names {
		if s.globals.Has(name) != e.had[i] {
			delete(s.exprs, src)
			return nil
		}
	}
	return e
}

// compileExpr compiles f, the chunk src, and keeps it, if the chunk is one
// expression that defines no function; otherwise, or when it does not
// compile (the ordinary path then reports why), it returns nil.
func (s *Session) compileExpr(f *syntax.File, file, src string) *exprEntry {
	if len(f.Stmts) != 1 {
		return nil
	}
	es, ok := f.Stmts[0].(*syntax.ExprStmt)
	if !ok {
		return nil
	}
	e := &exprEntry{f: f, file: file}
	lambda := false
	syntax.Walk(es.X, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Ident:
			e.names = append(e.names, n.Name)
			e.had = append(e.had, s.globals.Has(n.Name))
		case *syntax.LambdaExpr:
			lambda = true
		}
		return !lambda
	})
	if lambda {
		return nil
	}
	fn, err := starlark.ExprFuncOptions(FileOptions(), file, src, s.globals)
	if err != nil {
		return nil
	}
	e.fn = fn
	if s.exprs == nil || len(s.exprs) >= exprCacheSize {
		s.exprs = make(map[string]*exprEntry)
	}
	s.exprs[src] = e
	return e
}
