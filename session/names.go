package session

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/rshell/rshell/transport"
)

// reprLimit bounds the short repr of Names.
const reprLimit = 80

// snapshot is what Names and Complete answer from while a chunk runs: it
// holds only strings, never live values, so reading it races with nothing.
type snapshot struct {
	names   []transport.NameInfo // user globals
	globals []string             // every global name, sorted
	attrs   map[string][]string  // global name -> attribute names
}

// isUserGlobal reports whether global name was bound by the user (a
// predeclared value counts once it was rebound).
func (s *Session) isUserGlobal(name string, v starlark.Value) bool {
	b, ok := s.builtins[name]
	return !ok || !sameValue(b, v)
}

func sameValue(a, b starlark.Value) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}

// userGlobals needs s.mu.
func (s *Session) userGlobals() []string {
	names := make([]string, 0, len(s.globals))
	for k, v := range s.globals {
		if s.isUserGlobal(k, v) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// namesLocked needs s.mu.
func (s *Session) namesLocked() []transport.NameInfo {
	names := s.userGlobals()
	items := make([]transport.NameInfo, len(names))
	for i, n := range names {
		v := s.globals[n]
		items[i] = transport.NameInfo{Name: n, Type: v.Type(), Repr: ShortRepr(v, reprLimit)}
	}
	return items
}

// refreshSnapshot needs s.mu.
func (s *Session) refreshSnapshot() {
	snap := snapshot{
		names:   s.namesLocked(),
		globals: make([]string, 0, len(s.globals)),
		attrs:   make(map[string][]string),
	}
	if s.builtinAttrs == nil {
		s.builtinAttrs = make(map[string][]string, len(s.builtins))
		for k, v := range s.builtins {
			s.builtinAttrs[k] = attrNames(v)
		}
	}
	for k, v := range s.globals {
		snap.globals = append(snap.globals, k)
		if a, ok := s.builtinAttrs[k]; ok && !s.isUserGlobal(k, v) {
			if len(a) > 0 {
				snap.attrs[k] = a
			}
			continue
		}
		if a := attrNames(v); len(a) > 0 {
			snap.attrs[k] = a
		}
	}
	sort.Strings(snap.globals)
	s.snapDirty = false
	s.snapMu.Lock()
	s.snap = snap
	s.snapMu.Unlock()
}

var typeAttrs sync.Map // type name -> []string, for the built-in types with methods

// attrNames returns the sorted attribute names of v (shared for built-in
// types: do not modify).
func attrNames(v starlark.Value) []string {
	ha, ok := v.(starlark.HasAttrs)
	if !ok {
		return nil
	}
	switch v.(type) {
	case starlark.String, starlark.Bytes, *starlark.List, *starlark.Dict, *starlark.Set:
		if a, ok := typeAttrs.Load(v.Type()); ok {
			return a.([]string)
		}
		a := ha.AttrNames()
		sort.Strings(a)
		typeAttrs.Store(v.Type(), a)
		return a
	}
	a := ha.AttrNames()
	sort.Strings(a)
	return a
}

// Names describes the user's globals, sorted by name, with short reprs. It
// never waits behind a running chunk: then it answers from the snapshot
// taken the last time Names or Complete ran between chunks.
func (s *Session) Names() []transport.NameInfo {
	if s.mu.TryLock() {
		defer s.mu.Unlock()
		if s.snapDirty {
			s.refreshSnapshot()
		}
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return slices.Clone(s.snap.names)
}

// Complete returns the completions of prefix: "os.ge" gives the attributes
// of os starting with "ge" (as "os.getcwd"...), "x" the globals and
// built-ins starting with x. It never waits behind a running chunk.
func (s *Session) Complete(prefix string) []string {
	if s.mu.TryLock() {
		defer s.mu.Unlock()
		if s.snapDirty {
			s.refreshSnapshot()
		}
		return s.completeLocked(prefix)
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	dot := strings.LastIndexByte(prefix, '.')
	if dot < 0 {
		return completeNames(prefix, s.snap.globals)
	}
	base := prefix[:dot]
	if strings.Contains(base, ".") {
		return nil // nested attributes need live values
	}
	return completeAttrs(base, prefix[dot+1:], s.snap.attrs[base])
}

func (s *Session) completeLocked(prefix string) []string {
	dot := strings.LastIndexByte(prefix, '.')
	if dot < 0 {
		return completeNames(prefix, s.globals.Keys())
	}
	base := prefix[:dot]
	parts := strings.Split(base, ".")
	v, ok := s.globals[parts[0]]
	if !ok {
		return nil
	}
	for _, p := range parts[1:] {
		ha, ok := v.(starlark.HasAttrs)
		if !ok {
			return nil
		}
		av, err := ha.Attr(p)
		if err != nil || av == nil {
			return nil
		}
		v = av
	}
	return completeAttrs(base, prefix[dot+1:], attrNames(v))
}

// completeNames matches prefix among globals (sorted) and the universe.
func completeNames(prefix string, globals []string) []string {
	var out []string
	for _, g := range globals {
		if strings.HasPrefix(g, prefix) {
			out = append(out, g)
		}
	}
	for u := range starlark.Universe {
		if strings.HasPrefix(u, prefix) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func completeAttrs(base, prefix string, attrs []string) []string {
	var out []string
	for _, a := range attrs {
		if strings.HasPrefix(a, prefix) {
			out = append(out, base+"."+a)
		}
	}
	return out
}

// ShortRepr returns the repr of v cut to about limit bytes, with "…"
// appended when cut. It stops early: the repr of a 100k-element dict costs
// no more than that of a small one.
func ShortRepr(v starlark.Value, limit int) string {
	r := reprWriter{limit: limit, b: make([]byte, 0, limit+8)}
	r.value(v)
	if r.full {
		return string(r.b) + "…"
	}
	return string(r.b)
}

type reprWriter struct {
	b     []byte
	limit int
	full  bool
}

func (r *reprWriter) write(s string) {
	if r.full {
		return
	}
	if room := r.limit - len(r.b); len(s) > room {
		r.b = append(r.b, trimPartialRune(s[:max(room, 0)])...)
		r.full = true
		return
	}
	r.b = append(r.b, s...)
}

// quoted writes a quoted string or bytes, quoting only a bounded prefix.
func (r *reprWriter) quoted(s string, bytes bool) {
	room := r.limit - len(r.b) + 1
	cut := len(s) > room
	if cut {
		s = s[:max(room, 0)]
		if !bytes {
			s = trimPartialRune(s)
		}
	}
	var q string
	if bytes {
		q = starlark.Bytes(s).String()
	} else {
		q = starlark.String(s).String()
	}
	if cut {
		q = q[:len(q)-1] // drop the closing quote of a cut string
	}
	r.write(q)
	if cut {
		r.full = true
	}
}

func (r *reprWriter) value(v starlark.Value) {
	if r.full {
		return
	}
	switch v := v.(type) {
	case starlark.String:
		r.quoted(string(v), false)
	case starlark.Bytes:
		r.quoted(string(v), true)
	case *starlark.List:
		r.write("[")
		for i := 0; i < v.Len() && !r.full; i++ {
			if i > 0 {
				r.write(", ")
			}
			r.value(v.Index(i))
		}
		r.write("]")
	case starlark.Tuple:
		r.write("(")
		for i := 0; i < len(v) && !r.full; i++ {
			if i > 0 {
				r.write(", ")
			}
			r.value(v[i])
		}
		if len(v) == 1 {
			r.write(",")
		}
		r.write(")")
	case *starlark.Dict:
		r.write("{")
		i := 0
		for k, x := range v.Entries() {
			if r.full {
				break
			}
			if i > 0 {
				r.write(", ")
			}
			r.value(k)
			r.write(": ")
			r.value(x)
			i++
		}
		r.write("}")
	case *starlark.Set:
		r.write("set([")
		i := 0
		for k := range v.Elements() {
			if r.full {
				break
			}
			if i > 0 {
				r.write(", ")
			}
			r.value(k)
			i++
		}
		r.write("])")
	case *starlarkstruct.Struct:
		if c, ok := v.Constructor().(starlark.String); ok {
			r.write(string(c))
		} else {
			r.write(v.Constructor().String())
		}
		r.write("(")
		for i := 0; i < v.Len() && !r.full; i++ {
			if i > 0 {
				r.write(", ")
			}
			name, x := v.AttrAt(i)
			r.write(name)
			r.write(" = ")
			r.value(x)
		}
		r.write(")")
	default:
		r.write(safeString(v))
	}
}

// safeString is v.String(), or a placeholder if that panics (a value of a
// Go type from outside the interpreter may).
func safeString(v starlark.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "<" + v.Type() + " (repr failed)>"
		}
	}()
	return v.String()
}
