package repl

import (
	"math"
	"math/big"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/rshell/rshell/transport"
)

// TestRenderMatchesStarlark checks that, for values short enough to print on
// one line, Value prints exactly what Starlark's own repr prints.
func TestRenderMatchesStarlark(t *testing.T) {
	type pair struct {
		sv starlark.Value
		tv transport.Value
	}
	str := func(x string) pair { return pair{starlark.String(x), transport.String(x)} }
	flt := func(f float64) pair { return pair{starlark.Float(f), transport.Float(f)} }
	big100 := new(big.Int).Lsh(big.NewInt(1), 100)

	simple := []pair{
		{starlark.None, transport.None()},
		{starlark.True, transport.Bool(true)},
		{starlark.False, transport.Bool(false)},
		{starlark.MakeInt(0), transport.Int(0)},
		{starlark.MakeInt64(-123456789), transport.Int(-123456789)},
		{starlark.MakeInt64(math.MinInt64), transport.Int(math.MinInt64)},
		{starlark.MakeBigInt(big100), transport.BigInt(big100)},
		flt(0), flt(1), flt(-2.5), flt(0.1), flt(1e100), flt(1e-7), flt(123456789012345680),
		flt(math.Inf(1)), flt(math.Inf(-1)), flt(math.NaN()), flt(math.Copysign(0, -1)), flt(1e21), flt(1e20),
		str(""), str("hello"), str(`a"b\c'd`), str("\x1b[2J"), str("\x1b]0;t\x07"), str("\r\n\t\v\f\a\b\x00\x7f"),
		str("日本語 🎉"), str("\xff\xfe"), str("a\xe6\x97"), str("\u0085\u009b"), str("\u202e\u200b\ufeff"),
		{starlark.Bytes("a\x00\xffb\""), transport.Bytes("a\x00\xffb\"")},
	}
	var items []pair
	items = append(items, simple...)

	list := func(ps ...pair) pair {
		sv := make([]starlark.Value, len(ps))
		tv := make([]transport.Value, len(ps))
		for i, p := range ps {
			sv[i], tv[i] = p.sv, p.tv
		}
		return pair{starlark.NewList(sv), transport.List(tv...)}
	}
	tuple := func(ps ...pair) pair {
		sv := make(starlark.Tuple, len(ps))
		tv := make([]transport.Value, len(ps))
		for i, p := range ps {
			sv[i], tv[i] = p.sv, p.tv
		}
		return pair{sv, transport.Tuple(tv...)}
	}
	dict := func(ps ...pair) pair {
		d := starlark.NewDict(len(ps) / 2)
		var kv []transport.Value
		for i := 0; i < len(ps); i += 2 {
			if err := d.SetKey(ps[i].sv, ps[i+1].sv); err != nil {
				t.Fatal(err)
			}
			kv = append(kv, ps[i].tv, ps[i+1].tv)
		}
		return pair{d, transport.Dict(kv...)}
	}
	set := func(ps ...pair) pair {
		st := starlark.NewSet(len(ps))
		var tv []transport.Value
		for _, p := range ps {
			if err := st.Insert(p.sv); err != nil {
				t.Fatal(err)
			}
			tv = append(tv, p.tv)
		}
		return pair{st, transport.Set(tv...)}
	}
	i := func(n int64) pair { return pair{starlark.MakeInt64(n), transport.Int(n)} }

	items = append(items,
		list(), list(i(1), i(2), i(3)), list(str("a"), list(), tuple()),
		tuple(), tuple(i(1)), tuple(i(1), str("x")), tuple(tuple(i(1))),
		dict(), dict(str("Foo"), i(11), str("Bar"), i(42)), dict(i(1), list(i(2)), tuple(i(1), i(2)), pair{starlark.None, transport.None()}),
		set(), set(i(1), i(2)), set(str("b"), str("a")),
		list(dict(str("k"), set(tuple(i(1)))), flt(1.5), str("\x1b")),
	)
	// starlarkstruct sorts fields by name.
	items = append(items, pair{
		starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"a": starlark.MakeInt(1), "b": starlark.String("x")}),
		transport.Struct("struct", transport.String("a"), transport.Int(1), transport.String("b"), transport.String("x")),
	}, pair{
		starlarkstruct.FromStringDict(starlark.String("Point"), starlark.StringDict{"x": starlark.MakeInt(1), "y": starlark.Float(2)}),
		transport.Struct("Point", transport.String("x"), transport.Int(1), transport.String("y"), transport.Float(2)),
	}, pair{
		starlarkstruct.FromStringDict(starlarkstruct.Default, nil),
		transport.Struct("struct"),
	})

	r := Renderer{Width: 1000}
	for _, p := range items {
		want := p.sv.String()
		if got := r.Value(p.tv); got != want {
			t.Errorf("Value(%s) = %s, want %s", p.tv.Kind, got, want)
		}
	}
}
