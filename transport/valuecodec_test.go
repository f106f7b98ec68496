package transport

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

func sampleValues() []Value {
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	neg := new(big.Int).Neg(huge)
	return []Value{
		None(), Bool(true), Bool(false), Int(0), Int(-1), Int(23), Int(24), Int(math.MaxInt64), Int(math.MinInt64),
		BigInt(huge), BigInt(neg), BigInt(new(big.Int).Lsh(big.NewInt(1), 64)),
		Float(1.5), Float(math.Copysign(0, -1)), Float(math.NaN()), Float(math.Inf(1)), Float(math.Inf(-1)),
		String(""), String("héllo"), String("bad \xff utf8"), Bytes("\x00\x01"),
		List(), List(Int(1), String("a")), Tuple(Int(1)), Set(Int(1), Int(2)),
		Dict(String("Foo"), Int(11), String("Bar"), Int(100)),
		Dict(Tuple(Int(1), Int(2)), List(Int(3))),
		Struct("struct", String("a"), Int(1), String("b"), List(None())),
		Ref("function", "<function fib>"),
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, v := range sampleValues() {
		b := EncodeValue(v)
		got, err := DecodeValue(b, 0)
		if err != nil {
			t.Fatalf("%+v: %v", v, err)
		}
		if !got.Equal(v) {
			t.Fatalf("round trip changed %+v into %+v", v, got)
		}
		if !bytes.Equal(EncodeValue(got), b) {
			t.Fatalf("re-encoding differs for %+v", v)
		}
	}
}

func TestDecodeValueLimits(t *testing.T) {
	deep := bytes.Repeat([]byte{0x81}, 10000) // 10,000 nested one-element arrays
	deep = append(deep, 0xf6)
	if _, err := DecodeValue(deep, 100); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("deep: %v", err)
	}
	// A hostile length allocates nothing: an array claiming 2^32 elements.
	if _, err := DecodeValue([]byte{0x9b, 0, 0, 0, 1, 0, 0, 0, 0}, 0); !errors.Is(err, ErrBadValue) {
		t.Fatalf("huge count: %v", err)
	}
	for _, b := range [][]byte{{}, {0xff}, {0x5f}, {0x7a, 0xff, 0xff, 0xff, 0xff}, {0xd9, 0x9c, 0x41, 0x01}, {0xf6, 0xf6}} {
		if _, err := DecodeValue(b, 0); !errors.Is(err, ErrBadValue) {
			t.Fatalf("% x: %v", b, err)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	for _, v := range sampleValues() {
		f.Add(EncodeValue(v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeValue(b, 64)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same tree.
		v2, err := DecodeValue(EncodeValue(v), 64)
		if err != nil || !v2.Equal(v) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// dict100k is the replicate workload's value: 100,000 string keys, each
// to a list of 3 ints.
func dict100k() Value {
	items := make([]Value, 0, 200000)
	for i := 0; i < 100000; i++ {
		items = append(items, String("key"+itoa(i)), List(Int(int64(i)), Int(int64(i)), Int(int64(i))))
	}
	return Value{Kind: KindDict, Items: items}
}

func BenchmarkEncodeDict100k(b *testing.B) {
	v := dict100k()
	b.ReportAllocs()
	var e Encoder
	for b.Loop() {
		e.Reset()
		e.Value(v)
	}
	b.SetBytes(int64(e.Len()))
}

// BenchmarkEncodeDict100kFresh encodes into a new buffer each time, as a
// result is: the cost of growing the buffer is in it.
func BenchmarkEncodeDict100kFresh(b *testing.B) {
	v := dict100k()
	b.ReportAllocs()
	for b.Loop() {
		e := NewEncoder(nil)
		e.Value(v)
		b.SetBytes(int64(e.Len()))
	}
}

func BenchmarkDecodeDict100k(b *testing.B) {
	enc := EncodeValue(dict100k())
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := DecodeValue(enc, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }
