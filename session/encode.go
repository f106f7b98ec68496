package session

import (
	"fmt"
	"runtime"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/rshell/rshell/transport"
)

// maxRefRepr bounds the repr carried by a ref leaf of an unknown type.
const maxRefRepr = 4096

// Encode appends the replicated encoding of v to enc, walking the Starlark
// value directly (no intermediate tree). Containers nested maxDepth deep
// (the root is depth 0) and containers that contain themselves become ref
// leaves; maxDepth <= 0 means the default, 100.
func Encode(enc *transport.Encoder, v starlark.Value, maxDepth int) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	e := encoder{enc: enc, maxDepth: maxDepth}
	e.value(v, 0)
}

type encoder struct {
	enc      *transport.Encoder
	maxDepth int
	limit    int  // bytes; 0 = none
	over     bool // the encoding passed limit: stop
	// path holds the mutable containers being encoded, for cycle detection.
	path  []starlark.Value
	refs  int // ref leaves written: values that did not travel whole
	items int // elements encoded, for check's yield
}

// check reports whether the encoding passed the limit. Every few thousand
// elements it also yields, so that encoding a big value does not hold a
// one-CPU server's only thread for tens of milliseconds.
func (e *encoder) check() bool {
	if e.limit > 0 && e.enc.Len() > e.limit {
		e.over = true
	}
	if e.items++; e.items%8192 == 0 {
		runtime.Gosched()
	}
	return e.over
}

// fits reports whether n more bytes stay under the limit; when not, the
// encoding stops before copying them.
func (e *encoder) fits(n int) bool {
	if e.limit > 0 && e.enc.Len()+n > e.limit {
		e.over = true
	}
	return !e.over
}

func (e *encoder) onPath(v starlark.Value) bool {
	for _, p := range e.path {
		if p == v {
			return true
		}
	}
	return false
}

// leaf handles the depth and cycle checks common to containers; it
// reports whether v was written as a ref leaf instead.
func (e *encoder) leaf(v starlark.Value, depth int, cycleRepr string) bool {
	if depth >= e.maxDepth {
		e.refs++
		e.enc.Ref(v.Type(), ShortRepr(v, reprLimit))
		return true
	}
	if cycleRepr != "" && e.onPath(v) {
		e.refs++
		e.enc.Ref(v.Type(), cycleRepr)
		return true
	}
	return false
}

func (e *encoder) value(v starlark.Value, depth int) {
	switch v := v.(type) {
	case starlark.NoneType:
		e.enc.None()
	case starlark.Bool:
		e.enc.Bool(bool(v))
	case starlark.Int:
		if i, ok := v.Int64(); ok {
			e.enc.Int(i)
		} else {
			e.enc.BigInt(v.BigInt())
		}
	case starlark.Float:
		e.enc.Float(float64(v))
	case starlark.String:
		if e.fits(len(v)) {
			e.enc.String(string(v))
		}
	case starlark.Bytes:
		if e.fits(len(v)) {
			e.enc.BytesValue(string(v))
		}
	case *starlark.List:
		if e.leaf(v, depth, "[...]") {
			return
		}
		e.path = append(e.path, v)
		n := v.Len()
		e.enc.List(n)
		for i := 0; i < n && !e.check(); i++ {
			e.value(v.Index(i), depth+1)
		}
		e.path = e.path[:len(e.path)-1]
	case starlark.Tuple:
		if e.leaf(v, depth, "") {
			return
		}
		e.enc.Tuple(len(v))
		for i := 0; i < len(v) && !e.check(); i++ {
			e.value(v[i], depth+1)
		}
	case *starlark.Dict:
		if e.leaf(v, depth, "{...}") {
			return
		}
		e.path = append(e.path, v)
		e.enc.Dict(v.Len())
		for k, x := range v.Entries() {
			if e.check() {
				break
			}
			e.value(k, depth+1)
			e.value(x, depth+1)
		}
		e.path = e.path[:len(e.path)-1]
	case *starlark.Set:
		if e.leaf(v, depth, "set([...])") {
			return
		}
		e.path = append(e.path, v)
		e.enc.Set(v.Len())
		it := v.Iterate()
		var k starlark.Value
		for !e.check() && it.Next(&k) {
			e.value(k, depth+1)
		}
		it.Done()
		e.path = e.path[:len(e.path)-1]
	case *starlarkstruct.Struct:
		if e.leaf(v, depth, "struct(...)") {
			return
		}
		e.path = append(e.path, v)
		ctor, ok := v.Constructor().(starlark.String)
		if !ok {
			ctor = starlark.String(v.Constructor().String())
		}
		n := v.Len()
		e.enc.Struct(string(ctor), n)
		for i := 0; i < n && !e.check(); i++ {
			name, x := v.AttrAt(i)
			e.enc.String(name)
			e.value(x, depth+1)
		}
		e.path = e.path[:len(e.path)-1]
	case *RefValue:
		e.refs++
		e.enc.Ref(v.TypeName, v.Repr)
	default:
		repr := safeString(v)
		if len(repr) > maxRefRepr {
			repr = trimPartialRune(repr[:maxRefRepr]) + "…"
		}
		e.refs++
		e.enc.Ref(v.Type(), repr)
	}
	e.check()
}

// RefValue is a ref leaf brought into a namespace: something that could not
// travel (a function, a module...). It prints as the original's repr and
// encodes back to the same ref, so a value that holds one still round-trips.
type RefValue struct {
	TypeName string // the type of the original value
	Repr     string // the repr of the original value
}

var _ starlark.Value = (*RefValue)(nil)

func (r *RefValue) String() string       { return r.Repr }
func (r *RefValue) Type() string         { return "ref" }
func (r *RefValue) Freeze()              {}
func (r *RefValue) Truth() starlark.Bool { return true }
func (r *RefValue) Hash() (uint32, error) {
	return starlark.String(r.TypeName + "\x00" + r.Repr).Hash()
}

// maxToStarlarkDepth guards the recursion of ToStarlark on trees built in Go
// (DecodeValue already caps decoded trees).
const maxToStarlarkDepth = 1000

// ToStarlark converts a replicated value to a new, unfrozen Starlark value:
// the inverse of Encode. Ref leaves become *RefValue. A dict with duplicate
// or unhashable keys, a set with duplicate or unhashable elements, or a
// struct with repeated or non-string field names is an error, since it
// could not come back the same.
func ToStarlark(v transport.Value) (starlark.Value, error) {
	return toStarlark(&v, 0)
}

func toStarlark(v *transport.Value, depth int) (starlark.Value, error) {
	if depth > maxToStarlarkDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxToStarlarkDepth)
	}
	switch v.Kind {
	case transport.KindNone:
		return starlark.None, nil
	case transport.KindBool:
		return starlark.Bool(v.Bool), nil
	case transport.KindInt:
		if v.Big != nil {
			return starlark.MakeBigInt(v.Big), nil
		}
		return starlark.MakeInt64(v.Int), nil
	case transport.KindFloat:
		return starlark.Float(v.Float()), nil
	case transport.KindString:
		return starlark.String(v.Str), nil
	case transport.KindBytes:
		return starlark.Bytes(v.Str), nil
	case transport.KindList, transport.KindTuple:
		elems := make([]starlark.Value, len(v.Items))
		for i := range v.Items {
			x, err := toStarlark(&v.Items[i], depth+1)
			if err != nil {
				return nil, err
			}
			elems[i] = x
		}
		if v.Kind == transport.KindTuple {
			return starlark.Tuple(elems), nil
		}
		return starlark.NewList(elems), nil
	case transport.KindDict:
		if len(v.Items)%2 != 0 {
			return nil, fmt.Errorf("dict with an odd number of items")
		}
		n := len(v.Items) / 2
		d := starlark.NewDict(n)
		for i := 0; i < len(v.Items); i += 2 {
			k, err := toStarlark(&v.Items[i], depth+1)
			if err != nil {
				return nil, err
			}
			x, err := toStarlark(&v.Items[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(k, x); err != nil {
				return nil, fmt.Errorf("dict key %s: %v", ShortRepr(k, reprLimit), err)
			}
			if d.Len() != i/2+1 {
				return nil, fmt.Errorf("dict has the key %s twice", ShortRepr(k, reprLimit))
			}
		}
		return d, nil
	case transport.KindSet:
		s := starlark.NewSet(len(v.Items))
		for i := range v.Items {
			x, err := toStarlark(&v.Items[i], depth+1)
			if err != nil {
				return nil, err
			}
			if err := s.Insert(x); err != nil {
				return nil, fmt.Errorf("set element %s: %v", ShortRepr(x, reprLimit), err)
			}
			if s.Len() != i+1 {
				return nil, fmt.Errorf("set has the element %s twice", ShortRepr(x, reprLimit))
			}
		}
		return s, nil
	case transport.KindStruct:
		if len(v.Items)%2 != 0 {
			return nil, fmt.Errorf("struct with an odd number of items")
		}
		kwargs := make([]starlark.Tuple, 0, len(v.Items)/2)
		pairs := make([]starlark.Value, len(v.Items))
		for i := 0; i < len(v.Items); i += 2 {
			name := &v.Items[i]
			if name.Kind != transport.KindString {
				return nil, fmt.Errorf("struct field name is a %s, not a string", name.Kind)
			}
			x, err := toStarlark(&v.Items[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			pairs[i], pairs[i+1] = starlark.String(name.Str), x
			kwargs = append(kwargs, starlark.Tuple(pairs[i:i+2:i+2]))
		}
		st := starlarkstruct.FromKeywords(starlark.String(v.Str), kwargs)
		for i := 1; i < st.Len(); i++ {
			a, _ := st.AttrAt(i - 1)
			b, _ := st.AttrAt(i)
			if a == b {
				return nil, fmt.Errorf("struct has the field %q twice", a)
			}
		}
		return st, nil
	case transport.KindRef:
		return &RefValue{TypeName: v.Str, Repr: v.Repr()}, nil
	}
	return nil, fmt.Errorf("unknown value kind %d", v.Kind)
}
