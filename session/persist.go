package session

import (
	"fmt"
	"hash/maphash"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/rshell/rshell/transport"
)

// Record is one global as the durable store keeps it: a replicated value,
// or the source of the def or lambda that made a function, or only the
// type of something that cannot be restored.
type Record struct {
	Name   string `cbor:"name"`
	Kind   string `cbor:"kind"`            // RecordValue, RecordFunc or RecordLost
	Value  []byte `cbor:"value,omitempty"` // RecordValue: the value's encoding
	Source string `cbor:"src,omitempty"`   // RecordFunc: the def or lambda
	Func   string `cbor:"func,omitempty"`  // RecordFunc: the function's own name
	File   string `cbor:"file,omitempty"`  // RecordFunc: where it was defined
	Line   int    `cbor:"line,omitempty"`
	Order  int    `cbor:"order,omitempty"` // RecordFunc: when its file first ran (functions are made again in this order)
	Type   string `cbor:"type,omitempty"`  // the Starlark type
	Refs   bool   `cbor:"refs,omitempty"`  // RecordValue: parts of it did not travel (refs)
}

// Record kinds.
const (
	RecordValue = "value"
	RecordFunc  = "func"
	RecordLost  = "lost"
)

// Delta is what changed in a namespace since the previous Changes call.
type Delta struct {
	Reset   bool              // the namespace was cleared first
	Changed []Record          // globals bound or changed
	Removed []string          // globals gone
	Sources map[string]string // source of files that defined functions, new since the last call
}

// Empty reports whether nothing changed.
func (d Delta) Empty() bool {
	return !d.Reset && len(d.Changed) == 0 && len(d.Removed) == 0 && len(d.Sources) == 0
}

// durability is the session's memory of what it last reported to the store.
type durability struct {
	reset   bool
	hashes  map[string]uint64         // name -> hash of the record last reported
	values  map[string]starlark.Value // name -> immutable value last reported (skip re-encoding)
	sources map[string]bool           // files whose source was reported

	// touched holds the global names the chunks since the last Changes
	// mention: only they (and what the functions they call mention) can
	// have changed, so a big value elsewhere is not encoded again after
	// every chunk. Every fullEvery calls, everything is checked anyway.
	touched  map[string]bool
	calls    int
	funcRefs map[*starlark.Function][]string // identifiers in a function's def
}

const fullEvery = 256

// touch records the global names a chunk may have changed. Needs s.mu.
//
// Without calls (but to builtins that change nothing, like len and str),
// and with only plain names on the left of assignments, a chunk can change
// nothing but the names it binds: reading a big value (`d`, `len(d)`) must
// not cost encoding it again to see that it did not change. Any other
// call, or an assignment to an index or attribute, may change whatever the
// chunk mentions, so then every identifier counts.
func (s *Session) touch(f *syntax.File) {
	if s.dur.hashes == nil {
		return // Changes was never called: nothing tracks changes
	}
	if s.dur.touched == nil {
		s.dur.touched = map[string]bool{}
	}
	var (
		mentioned = map[string]bool{} // every identifier
		bound     []string            // the plain names the chunk binds
		// binders holds every name in a binding position, even a parameter
		// or a comprehension variable: it may hide a builtin.
		binders = map[string]bool{}
		callees []string // pure builtins the chunk calls
		mutates bool
	)
	mark := func(n syntax.Node) {
		syntax.Walk(n, func(n syntax.Node) bool {
			if id, ok := n.(*syntax.Ident); ok {
				binders[id.Name] = true
			}
			return true
		})
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Ident:
			mentioned[n.Name] = true
		case *syntax.CallExpr:
			if id, ok := n.Fn.(*syntax.Ident); ok && pureBuiltins[id.Name] {
				callees = append(callees, id.Name)
			} else {
				mutates = true
			}
		case *syntax.AssignStmt:
			mark(n.LHS)
			mutates = !bindsNames(n.LHS, &bound) || mutates
		case *syntax.ForStmt:
			mark(n.Vars)
			mutates = !bindsNames(n.Vars, &bound) || mutates
		case *syntax.ForClause:
			mark(n.Vars)
		case *syntax.DefStmt:
			bound = append(bound, n.Name.Name)
			binders[n.Name.Name] = true
			for _, p := range n.Params {
				mark(p)
			}
		case *syntax.LambdaExpr:
			for _, p := range n.Params {
				mark(p)
			}
		case *syntax.LoadStmt:
			for _, id := range n.To {
				bound = append(bound, id.Name)
				binders[id.Name] = true
			}
		}
		return true
	})
	for _, name := range callees {
		if _, global := s.globals[name]; global || binders[name] {
			mutates = true
		}
	}
	if mutates {
		for name := range mentioned {
			s.dur.touched[name] = true
		}
		return
	}
	for _, name := range bound {
		s.dur.touched[name] = true
	}
}

// pureBuiltins are universe functions that change none of their
// arguments (their arguments' own calls are looked at separately).
var pureBuiltins = map[string]bool{
	"abs": true, "all": true, "any": true, "bool": true, "bytes": true, "chr": true,
	"dict": true, "dir": true, "enumerate": true, "float": true, "hasattr": true,
	"hash": true, "int": true, "len": true, "list": true, "max": true, "min": true,
	"ord": true, "print": true, "range": true, "repr": true, "reversed": true,
	"set": true, "sorted": true, "str": true, "tuple": true, "type": true, "zip": true,
}

// bindsNames appends the names an assignment target binds and reports
// whether it is made of plain names only (x, (x, y), [x, y]).
func bindsNames(e syntax.Expr, names *[]string) bool {
	switch e := e.(type) {
	case *syntax.Ident:
		*names = append(*names, e.Name)
		return true
	case *syntax.ParenExpr:
		return bindsNames(e.X, names)
	case *syntax.TupleExpr:
		for _, x := range e.List {
			if !bindsNames(x, names) {
				return false
			}
		}
		return true
	case *syntax.ListExpr:
		for _, x := range e.List {
			if !bindsNames(x, names) {
				return false
			}
		}
		return true
	}
	return false
}

// candidates returns the globals that may have changed since the last
// Changes, or nil when all must be checked. Needs s.mu.
func (s *Session) candidates() map[string]bool {
	d := &s.dur
	d.calls++
	if d.calls%fullEvery == 0 {
		return nil
	}
	c := d.touched
	if c == nil {
		c = map[string]bool{}
	}
	// Functions the chunk named may change what their bodies name, and
	// so on: follow them.
	queue := make([]string, 0, len(c))
	for name := range c {
		queue = append(queue, name)
	}
	for len(queue) > 0 {
		name := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		fn, ok := s.globals[name].(*starlark.Function)
		if !ok {
			continue
		}
		refs, ok := d.funcRefs[fn]
		if !ok {
			refs = s.funcIdents(fn)
			if d.funcRefs == nil {
				d.funcRefs = map[*starlark.Function][]string{}
			}
			d.funcRefs[fn] = refs
		}
		if refs == nil {
			return nil // a function whose source is unknown: check everything
		}
		for _, r := range refs {
			if !c[r] {
				c[r] = true
				queue = append(queue, r)
			}
		}
	}
	// A container bound to two names changes under both.
	shared := map[starlark.Value]bool{}
	for name := range c {
		if v, ok := s.globals[name]; ok && !immutable(v) && comparable(v) {
			shared[v] = true
		}
	}
	for name, v := range s.globals {
		if !c[name] && !immutable(v) && comparable(v) && shared[v] {
			c[name] = true
		}
	}
	return c
}

func comparable(v starlark.Value) bool {
	switch v.(type) {
	case *starlark.List, *starlark.Dict, *starlark.Set:
		return true
	}
	return false
}

// funcIdents lists the identifiers of a function's def (nil if its source
// is not kept). Needs s.mu.
func (s *Session) funcIdents(fn *starlark.Function) []string {
	src, _, _, ok := s.funcSource(fn)
	if !ok {
		return nil
	}
	f, err := FileOptions().Parse("<def>", src, 0)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	refs := []string{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok && !seen[id.Name] {
			seen[id.Name] = true
			refs = append(refs, id.Name)
		}
		return true
	})
	return refs
}

var seed = maphash.MakeSeed()

func recordHash(r *Record) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(r.Kind)
	h.Write(r.Value)
	h.WriteString(r.Source)
	h.WriteString(r.Type)
	return h.Sum64()
}

// immutable reports whether v can never change in place, so an identical
// binding needs no new record.
func immutable(v starlark.Value) bool {
	switch v := v.(type) {
	case starlark.NoneType, starlark.Bool, starlark.Int, starlark.Float, starlark.String, starlark.Bytes, *starlark.Function:
		return true
	case starlark.Tuple:
		for _, x := range v {
			if !immutable(x) {
				return false
			}
		}
		return true
	}
	return false
}

// Changes returns what changed in the namespace since the previous call,
// for the durable store. The first call returns everything.
func (s *Session) Changes() Delta {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.dur
	var only map[string]bool // nil: check every global
	if d.hashes == nil || d.reset {
		d.hashes, d.values, d.sources = map[string]uint64{}, map[string]starlark.Value{}, map[string]bool{}
	} else {
		only = s.candidates()
	}
	d.touched = nil
	out := Delta{Reset: d.reset}
	d.reset = false
	seen := make(map[string]bool, len(s.globals))
	for name, v := range s.globals {
		if !s.isUserGlobal(name, v) || name == "_" {
			continue // _ is the last result, not state worth a disk write
		}
		seen[name] = true
		if only != nil && !only[name] {
			continue
		}
		if old, ok := d.values[name]; ok && immutable(v) && sameValue(old, v) {
			continue
		}
		r := s.record(name, v)
		h := recordHash(&r)
		if old, ok := d.hashes[name]; ok && old == h {
			continue
		}
		d.hashes[name] = h
		if immutable(v) {
			d.values[name] = v
		} else {
			delete(d.values, name)
		}
		if r.Kind == RecordFunc && !d.sources[r.File] {
			if src, ok := s.sources[r.File]; ok {
				if out.Sources == nil {
					out.Sources = map[string]string{}
				}
				out.Sources[r.File] = src
				d.sources[r.File] = true
			}
		}
		out.Changed = append(out.Changed, r)
	}
	for name := range d.hashes {
		if !seen[name] && (only == nil || only[name]) {
			delete(d.hashes, name)
			delete(d.values, name)
			out.Removed = append(out.Removed, name)
		}
	}
	sort.Slice(out.Changed, func(i, j int) bool { return out.Changed[i].Name < out.Changed[j].Name })
	sort.Strings(out.Removed)
	return out
}

// record describes one global for the store. Needs s.mu.
func (s *Session) record(name string, v starlark.Value) Record {
	if fn, ok := v.(*starlark.Function); ok {
		if src, file, line, ok := s.funcSource(fn); ok {
			return Record{Name: name, Kind: RecordFunc, Source: src, Func: fn.Name(), File: file, Line: line, Order: s.fileOrder[file], Type: v.Type()}
		}
		return Record{Name: name, Kind: RecordLost, Type: v.Type()}
	}
	var enc transport.Encoder
	e := encoder{enc: &enc, maxDepth: s.opts.MaxDepth}
	e.value(v, 0)
	if e.refs > 0 && !hasContent(v) {
		return Record{Name: name, Kind: RecordLost, Type: v.Type()}
	}
	return Record{Name: name, Kind: RecordValue, Value: enc.Bytes(), Type: v.Type(), Refs: e.refs > 0}
}

// hasContent reports whether v is a container whose other parts are worth
// keeping even if some of it became refs.
func hasContent(v starlark.Value) bool {
	switch v.(type) {
	case *starlark.List, *starlark.Dict, *starlark.Set, starlark.Tuple:
		return true
	}
	return false
}

// funcSource finds the def statement or lambda expression that made fn in
// the kept source of its file: only functions defined at the top level of
// a chunk or file can be made again from their source.
func (s *Session) funcSource(fn *starlark.Function) (src, file string, line int, ok bool) {
	pos := fn.Position()
	file = pos.Filename()
	text, found := s.sources[file]
	if !found {
		return "", "", 0, false
	}
	f, err := FileOptions().Parse(file, text, 0)
	if err != nil {
		return "", "", 0, false
	}
	var node syntax.Node
	for _, stmt := range f.Stmts {
		if d, isDef := stmt.(*syntax.DefStmt); isDef && d.Name.Name == fn.Name() && d.Def.Line == pos.Line {
			node = d
			break
		}
	}
	if node == nil && fn.Name() == "lambda" {
		for _, stmt := range f.Stmts {
			syntax.Walk(stmt, func(n syntax.Node) bool {
				if l, isLambda := n.(*syntax.LambdaExpr); isLambda && l.Lambda.Line == pos.Line && l.Lambda.Col == pos.Col {
					node = l
				}
				return node == nil
			})
			if node != nil {
				break
			}
		}
		if _, isLambda := node.(*syntax.LambdaExpr); isLambda && !topLevelLambda(f, node) {
			return "", "", 0, false
		}
	}
	if node == nil {
		return "", "", 0, false
	}
	start, end := node.Span()
	return sliceSource(text, start, end), file, int(start.Line), true
}

// topLevelLambda reports whether a lambda sits outside every def, so that
// it closes over nothing but globals.
func topLevelLambda(f *syntax.File, target syntax.Node) bool {
	inside := false
	for _, stmt := range f.Stmts {
		if d, ok := stmt.(*syntax.DefStmt); ok {
			syntax.Walk(d, func(n syntax.Node) bool {
				if n == target {
					inside = true
				}
				return !inside
			})
		}
	}
	return !inside
}

// sliceSource returns the text between two positions (1-based lines and columns).
func sliceSource(text string, start, end syntax.Position) string {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for l := int(start.Line); l <= int(end.Line) && l-1 < len(lines); l++ {
		line := lines[l-1]
		from, to := 0, len(line)
		if l == int(start.Line) {
			from = min(int(start.Col)-1, len(line))
		}
		if l == int(end.Line) {
			to = min(max(int(end.Col)-1, from), len(line))
		}
		b.WriteString(line[from:to])
	}
	return b.String()
}

// Restore brings back a namespace from the store: values exactly,
// functions by running their defining source again (with their original
// file name and line numbers, so tracebacks still point at them). It
// returns what could not be restored, each with the reason.
func (s *Session) Restore(records []Record, sources map[string]string) (notRestored []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for file, src := range sources {
		s.sources[file] = src
		// New chunks must not reuse a restored chunk's name.
		var n int
		if _, err := fmt.Sscanf(file, "<in[%d]>", &n); err == nil && n > s.chunks {
			s.chunks = n
		}
	}
	var funcs []Record
	for _, r := range records {
		switch r.Kind {
		case RecordValue:
			v, err := transport.DecodeValue(r.Value, 0)
			if err == nil {
				var sv starlark.Value
				if sv, err = ToStarlark(v); err == nil {
					s.globals[r.Name] = sv
					if r.Refs {
						notRestored = append(notRestored, fmt.Sprintf("%s (a %s: parts that were functions or modules came back as refs)", r.Name, r.Type))
					}
					continue
				}
			}
			notRestored = append(notRestored, fmt.Sprintf("%s (a %s: %v)", r.Name, r.Type, err))
		case RecordFunc:
			funcs = append(funcs, r)
		default:
			notRestored = append(notRestored, fmt.Sprintf("%s (a %s cannot be saved)", r.Name, r.Type))
		}
	}
	notRestored = append(notRestored, s.restoreFuncs(funcs)...)
	sort.Strings(notRestored)
	// What was just restored is what the store holds.
	s.dur = durability{}
	s.snapDirty = true
	return notRestored
}

// restoreFuncs makes functions again from their source, in the order
// their files first ran. The defs of one file run together as one chunk,
// laid out at their original lines, so they see each other as they did
// and tracebacks keep their positions. Needs s.mu.
func (s *Session) restoreFuncs(funcs []Record) (notRestored []string) {
	sort.SliceStable(funcs, func(i, j int) bool {
		a, b := funcs[i], funcs[j]
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	thread := &starlark.Thread{Name: "restore", Print: func(*starlark.Thread, string) {}}
	for i := 0; i < len(funcs); {
		j := i
		for j < len(funcs) && funcs[j].File == funcs[i].File {
			j++
		}
		group := funcs[i:j]
		i = j
		if s.fileOrder[group[0].File] == 0 {
			s.fileOrder[group[0].File] = group[0].Order
		}
		var defs strings.Builder
		line := 1
		done := map[int]bool{}
		for _, r := range group {
			if strings.HasPrefix(r.Source, "lambda") || done[r.Line] || r.Line < line {
				continue
			}
			done[r.Line] = true
			defs.WriteString(strings.Repeat("\n", r.Line-line))
			defs.WriteString(r.Source)
			defs.WriteString("\n")
			line = r.Line + strings.Count(r.Source, "\n") + 1
		}
		made := map[string]starlark.Value{}
		if defs.Len() > 0 {
			scratch := make(starlark.StringDict, len(s.globals))
			for k, v := range s.globals {
				scratch[k] = v
			}
			f, err := FileOptions().Parse(group[0].File, defs.String(), 0)
			if err == nil {
				err = starlark.ExecREPLChunk(f, thread, scratch)
			}
			if err != nil {
				for _, r := range group {
					notRestored = append(notRestored, fmt.Sprintf("%s (function: %v)", r.Name, err))
				}
				continue
			}
			for _, r := range group {
				if fn, ok := scratch[r.Func].(*starlark.Function); ok && fn.Position().Line == int32(r.Line) {
					made[r.Func+"@"+fmt.Sprint(r.Line)] = fn
				}
			}
		}
		for _, r := range group {
			if strings.HasPrefix(r.Source, "lambda") {
				if err := s.restoreLambda(r, thread); err != nil {
					notRestored = append(notRestored, fmt.Sprintf("%s (function: %v)", r.Name, err))
				}
				continue
			}
			v, ok := made[r.Func+"@"+fmt.Sprint(r.Line)]
			if !ok {
				notRestored = append(notRestored, fmt.Sprintf("%s (function: its definition did not run again)", r.Name))
				continue
			}
			s.globals[r.Name] = v
		}
	}
	return notRestored
}

// restoreLambda evaluates a lambda again at its original position. Needs s.mu.
func (s *Session) restoreLambda(r Record, thread *starlark.Thread) error {
	pad := strings.Repeat("\n", max(r.Line-1, 0))
	expr, err := FileOptions().ParseExpr(r.File, pad+r.Source, 0)
	if err != nil {
		return err
	}
	v, err := starlark.EvalExprOptions(FileOptions(), thread, expr, s.globals)
	if err != nil {
		return err
	}
	s.globals[r.Name] = v
	return nil
}
