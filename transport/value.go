package transport

import (
	"math"
	"math/big"
)

// Kind says which variant of the replicated value tree a Value holds.
type Kind uint8

// The kinds of replicated value. The zero Kind is None.
const (
	KindNone Kind = iota
	KindBool
	KindInt
	KindFloat
	KindString
	KindBytes
	KindList
	KindTuple
	KindDict
	KindSet
	KindStruct
	KindRef
)

var kindNames = [...]string{"NoneType", "bool", "int", "float", "string", "bytes", "list", "tuple", "dict", "set", "struct", "ref"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is one node of a replicated value: a copy of remote data, never a
// handle to it. Children live in one contiguous slice, so a large list or
// dict costs one allocation rather than one per element.
//
//   - Bool and Int (when it fits in int64) use their fields; a Float keeps
//     its IEEE 754 bits in Int (read it with the Float method).
//   - Int that does not fit in int64 uses Big.
//   - String and Bytes keep their bytes in Str (strings may be invalid UTF-8).
//   - List, Tuple and Set keep their elements in Items.
//   - Dict keeps key, value, key, value... in Items, in insertion order.
//   - Struct keeps its constructor name in Str and field name (a String
//     Value), value, ... in Items.
//   - Ref keeps the remote type name in Str and its repr as the one String
//     in Items (read it with the Repr method).
//
// A Value is 64 bytes: a 100,000-key dict of 3-int lists is 500,000 of them.
type Value struct {
	Kind  Kind
	Bool  bool
	Int   int64
	Big   *big.Int
	Str   string
	Items []Value
}

// Float is a float value's number.
func (v Value) Float() float64 {
	if v.Kind != KindFloat {
		return 0
	}
	return math.Float64frombits(uint64(v.Int))
}

// Repr is a ref's repr: how the remote side shows the value.
func (v Value) Repr() string {
	if v.Kind != KindRef || len(v.Items) != 1 {
		return ""
	}
	return v.Items[0].Str
}

// Constructors for building values in Go code and tests.

// None returns the None value.
func None() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Int returns an int value.
func Int(i int64) Value { return Value{Kind: KindInt, Int: i} }

// BigInt returns an int value of any size.
func BigInt(b *big.Int) Value {
	if b.IsInt64() {
		return Int(b.Int64())
	}
	return Value{Kind: KindInt, Big: new(big.Int).Set(b)}
}

// Float returns a float value.
func Float(f float64) Value { return Value{Kind: KindFloat, Int: int64(math.Float64bits(f))} }

// String returns a string value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Bytes returns a bytes value.
func Bytes(s string) Value { return Value{Kind: KindBytes, Str: s} }

// List returns a list value.
func List(items ...Value) Value { return Value{Kind: KindList, Items: items} }

// Tuple returns a tuple value.
func Tuple(items ...Value) Value { return Value{Kind: KindTuple, Items: items} }

// Set returns a set value.
func Set(items ...Value) Value { return Value{Kind: KindSet, Items: items} }

// Dict returns a dict value from alternating keys and values.
func Dict(kv ...Value) Value {
	if len(kv)%2 != 0 {
		panic("transport.Dict: odd number of arguments")
	}
	return Value{Kind: KindDict, Items: kv}
}

// Struct returns a struct value from alternating field names and values.
func Struct(ctor string, fields ...Value) Value {
	if len(fields)%2 != 0 {
		panic("transport.Struct: odd number of arguments")
	}
	return Value{Kind: KindStruct, Str: ctor, Items: fields}
}

// Ref returns a ref leaf: something that could not be replicated.
func Ref(typ, repr string) Value {
	return Value{Kind: KindRef, Str: typ, Items: []Value{String(repr)}}
}

// Len is the number of elements of a container (pairs, for dicts and structs).
func (v Value) Len() int {
	switch v.Kind {
	case KindDict, KindStruct:
		return len(v.Items) / 2
	case KindRef:
		return 0
	}
	return len(v.Items)
}

// IsNone reports whether v is None.
func (v Value) IsNone() bool { return v.Kind == KindNone }

// Lookup returns the value for a string key of a dict or a field of a struct.
func (v Value) Lookup(key string) (Value, bool) {
	if v.Kind != KindDict && v.Kind != KindStruct {
		return Value{}, false
	}
	for i := 0; i+1 < len(v.Items); i += 2 {
		k := v.Items[i]
		if k.Kind == KindString && k.Str == key {
			return v.Items[i+1], true
		}
	}
	return Value{}, false
}

// Equal reports whether two values are the same tree. Floats compare by
// bits, so NaN equals the same NaN and -0.0 differs from 0.0: this is the
// equality the exact round trip promises.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case KindNone:
		return true
	case KindBool:
		return v.Bool == w.Bool
	case KindInt:
		if v.Big != nil || w.Big != nil {
			return v.bigInt().Cmp(w.bigInt()) == 0
		}
		return v.Int == w.Int
	case KindFloat:
		return floatBits(v.Float()) == floatBits(w.Float())
	case KindString, KindBytes:
		return v.Str == w.Str
	case KindRef:
		return v.Str == w.Str && v.Repr() == w.Repr()
	}
	if v.Kind == KindStruct && v.Str != w.Str {
		return false
	}
	if len(v.Items) != len(w.Items) {
		return false
	}
	for i := range v.Items {
		if !v.Items[i].Equal(w.Items[i]) {
			return false
		}
	}
	return true
}

func (v Value) bigInt() *big.Int {
	if v.Big != nil {
		return v.Big
	}
	return big.NewInt(v.Int)
}

// BigValue returns an int value as a *big.Int whatever its size.
func (v Value) BigValue() *big.Int { return new(big.Int).Set(v.bigInt()) }
