package session

import (
	"bytes"
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"go.starlark.net/starlark"

	"github.com/rshell/rshell/transport"
)

// gen generates random replicable value trees.
type gen struct{ r *rand.Rand }

var specialFloats = []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(),
	math.Float64frombits(0x7ff8000000000123), math.MaxFloat64, math.SmallestNonzeroFloat64, 1.5, -2.25}

func (g gen) scalar() transport.Value {
	switch g.r.IntN(8) {
	case 0:
		return transport.None()
	case 1:
		return transport.Bool(g.r.IntN(2) == 0)
	case 2:
		switch g.r.IntN(4) {
		case 0:
			return transport.Int(math.MinInt64 + g.r.Int64N(3))
		case 1:
			return transport.Int(math.MaxInt64 - g.r.Int64N(3))
		case 2:
			b := new(big.Int).Lsh(big.NewInt(g.r.Int64N(1000)+1), uint(64+g.r.IntN(200)))
			if g.r.IntN(2) == 0 {
				b.Neg(b)
			}
			return transport.BigInt(b)
		}
		return transport.Int(g.r.Int64N(2000) - 1000)
	case 3:
		if g.r.IntN(2) == 0 {
			return transport.Float(specialFloats[g.r.IntN(len(specialFloats))])
		}
		return transport.Float(g.r.NormFloat64() * 1e6)
	case 4, 5:
		return transport.String(g.str())
	case 6:
		return transport.Bytes(g.str())
	}
	return transport.Ref([]string{"function", "module", "builtin_function_or_method"}[g.r.IntN(3)], "<"+g.str()+">")
}

func (g gen) str() string {
	n := g.r.IntN(12)
	b := make([]byte, n)
	for i := range b {
		if g.r.IntN(10) == 0 {
			b[i] = byte(g.r.IntN(256)) // sometimes not UTF-8
		} else {
			b[i] = byte('a' + g.r.IntN(26))
		}
	}
	if g.r.IntN(8) == 0 {
		return string(b) + "é✓"
	}
	return string(b)
}

// hashable generates a value Starlark can use as a dict key or set element.
func (g gen) hashable(depth int) transport.Value {
	if depth < 2 && g.r.IntN(5) == 0 {
		n := g.r.IntN(3)
		items := make([]transport.Value, n)
		for i := range items {
			items[i] = g.hashable(depth + 1)
		}
		return transport.Tuple(items...)
	}
	for {
		v := g.scalar()
		if v.Kind != transport.KindRef { // refs hash, but compare by identity
			return v
		}
	}
}

// unique keeps the candidates Starlark considers distinct (1 == 1.0, and so on).
func unique(tb testing.TB, cands []transport.Value) []transport.Value {
	seen := starlark.NewDict(len(cands))
	var out []transport.Value
	for _, c := range cands {
		k, err := ToStarlark(c)
		if err != nil {
			tb.Fatalf("ToStarlark(%+v): %v", c, err)
		}
		if _, found, _ := seen.Get(k); found {
			continue
		}
		if seen.SetKey(k, starlark.None) == nil {
			out = append(out, c)
		}
	}
	return out
}

func (g gen) value(tb testing.TB, depth int) transport.Value {
	if depth >= 5 || g.r.IntN(3) == 0 {
		return g.scalar()
	}
	n := g.r.IntN(6)
	switch g.r.IntN(6) {
	case 0, 1:
		items := make([]transport.Value, n)
		for i := range items {
			items[i] = g.value(tb, depth+1)
		}
		return transport.List(items...)
	case 2:
		items := make([]transport.Value, n)
		for i := range items {
			items[i] = g.value(tb, depth+1)
		}
		return transport.Tuple(items...)
	case 3:
		keys := make([]transport.Value, n)
		for i := range keys {
			keys[i] = g.hashable(0)
		}
		var kv []transport.Value
		for _, k := range unique(tb, keys) {
			kv = append(kv, k, g.value(tb, depth+1))
		}
		return transport.Dict(kv...)
	case 4:
		elems := make([]transport.Value, n)
		for i := range elems {
			elems[i] = g.hashable(0)
		}
		return transport.Set(unique(tb, elems)...)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = g.str()
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var fields []transport.Value
	for _, name := range names {
		fields = append(fields, transport.String(name), g.value(tb, depth+1))
	}
	ctor := "struct"
	if g.r.IntN(3) == 0 {
		ctor = g.str()
	}
	return transport.Struct(ctor, fields...)
}

// roundTrip encodes v, brings it into Starlark and encodes it back.
func roundTrip(tb testing.TB, v transport.Value) {
	tb.Helper()
	wire := transport.EncodeValue(v)
	sv, err := ToStarlark(v)
	if err != nil {
		tb.Fatalf("ToStarlark(%+v): %v", v, err)
	}
	enc := transport.NewEncoder(nil)
	Encode(enc, sv, 1000)
	if !bytes.Equal(enc.Bytes(), wire) {
		back, _ := transport.DecodeValue(enc.Bytes(), 0)
		tb.Fatalf("round trip changed the encoding:\n in  %+v\n out %+v", v, back)
	}
	back, err := transport.DecodeValue(enc.Bytes(), 0)
	if err != nil {
		tb.Fatalf("DecodeValue: %v", err)
	}
	if !back.Equal(v) {
		tb.Fatalf("round trip:\n in  %+v\n out %+v", v, back)
	}
}

func TestRoundTripProperty(t *testing.T) {
	seed := uint64(1)
	r := rand.New(rand.NewPCG(seed, 2))
	g := gen{r}
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		v := g.value(t, 0)
		t.Run("", func(t *testing.T) { roundTrip(t, v) })
		if t.Failed() {
			t.Fatalf("failed at case %d (seed %d)", i, seed)
		}
	}
}

func TestToStarlarkRejects(t *testing.T) {
	for name, v := range map[string]transport.Value{
		"dup dict key":        transport.Dict(transport.Int(1), transport.None(), transport.Float(1), transport.None()),
		"unhashable dict key": transport.Dict(transport.List(), transport.None()),
		"dup set elem":        transport.Set(transport.String("a"), transport.String("a")),
		"unhashable set elem": transport.Set(transport.Dict()),
		"dup struct field":    transport.Struct("s", transport.String("a"), transport.None(), transport.String("a"), transport.None()),
		"non-string field":    transport.Struct("s", transport.Int(1), transport.None()),
	} {
		if _, err := ToStarlark(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// canonical reports whether v is in the form Encode produces: struct fields
// sorted (Starlark keeps them sorted whatever order they came in).
func canonical(v transport.Value) bool {
	if v.Kind == transport.KindStruct {
		for i := 2; i < len(v.Items); i += 2 {
			if v.Items[i-2].Str >= v.Items[i].Str {
				return false
			}
		}
	}
	for _, x := range v.Items {
		if !canonical(x) {
			return false
		}
	}
	return true
}

func FuzzValueRoundTrip(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	g := gen{r}
	for i := 0; i < 8; i++ {
		f.Add(transport.EncodeValue(g.value(f, 0)))
	}
	f.Add(transport.EncodeValue(transport.Dict(transport.String("Foo"), transport.Int(11), transport.String("Bar"), transport.Int(100))))
	f.Add(transport.EncodeValue(transport.Struct("struct", transport.String("b"), transport.Float(math.NaN()), transport.String("a"), transport.Int(1))))
	f.Fuzz(func(t *testing.T, data []byte) {
		v0, err := transport.DecodeValue(data, 0)
		if err != nil {
			return
		}
		sv, err := ToStarlark(v0)
		if err != nil {
			return // duplicate keys and the like: not a replicable value
		}
		enc := transport.NewEncoder(nil)
		Encode(enc, sv, 1000)
		v1, err := transport.DecodeValue(enc.Bytes(), 0)
		if err != nil {
			t.Fatalf("decoding our own encoding: %v", err)
		}
		if canonical(v0) && !v1.Equal(v0) {
			t.Fatalf("round trip:\n in  %+v\n out %+v", v0, v1)
		}
		// Whatever came in, what we send is stable.
		roundTrip(t, v1)
	})
}

func TestShortRepr(t *testing.T) {
	d := starlark.NewDict(0)
	for i := 0; i < 100000; i++ {
		d.SetKey(starlark.String("key"+strconv.Itoa(i)), starlark.MakeInt(i))
	}
	r := ShortRepr(d, 80)
	if len(r) > 80+len("…") || r[:10] != `{"key0": 0` {
		t.Errorf("ShortRepr = %q", r)
	}
	for _, c := range []struct {
		v    starlark.Value
		want string
	}{
		{starlark.Tuple{starlark.MakeInt(1)}, "(1,)"},
		{starlark.String("hé"), `"hé"`},
		{starlark.String("ééééé"), `"éé…`},
		{starlark.NewList([]starlark.Value{starlark.None, starlark.True}), "[None,…"},
	} {
		if got := ShortRepr(c.v, 6); got != c.want {
			t.Errorf("ShortRepr(%v, 6) = %q, want %q", c.v, got, c.want)
		}
	}
}

// A big dict's replica keeps its insertion order through deletes and
// re-inserts (the patched Starlark-go reads big dicts in memory order),
// the order Starlark's own keys() gives.
func TestBigDictKeepsItsOrder(t *testing.T) {
	s := New(Options{})
	ctx := context.Background()
	src := "d = {}\n" +
		"for i in range(6000):\n    d['k%d' % ((i * 7919) % 6000)] = i\n" +
		"for i in range(0, 6000, 3):\n    d.pop('k%d' % i)\n" +
		"for i in range(0, 6000, 9):\n    d['k%d' % i] = -i\n" +
		"d['k1'] = 'updated'\n"
	if _, ei := s.Eval(ctx, src, "", nil); ei != nil {
		t.Fatal(ei.Msg)
	}
	keys, ei := s.Eval(ctx, "list(d.keys())", "", nil)
	if ei != nil {
		t.Fatal(ei.Msg)
	}
	whole, ei := s.Eval(ctx, "d", "", nil)
	if ei != nil {
		t.Fatal(ei.Msg)
	}
	kv, err := transport.DecodeValue(keys, 0)
	if err != nil {
		t.Fatal(err)
	}
	dv, err := transport.DecodeValue(whole, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(kv.Items) < 4000 || len(dv.Items) != 2*len(kv.Items) {
		t.Fatalf("%d keys, %d dict items", len(kv.Items), len(dv.Items))
	}
	for i, k := range kv.Items {
		if !dv.Items[2*i].Equal(k) {
			t.Fatalf("entry %d of the replica is %v, keys() says %v", i, dv.Items[2*i].Str, k.Str)
		}
	}
}
