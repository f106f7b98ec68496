package session

import (
	"context"
	"strconv"
	"testing"

	"go.starlark.net/starlark"

	"github.com/rshell/rshell/transport"
)

func BenchmarkEvalTrivial(b *testing.B) {
	s := New(Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ei := s.Eval(ctx, "1+1", "", nil); ei != nil {
			b.Fatal(ei.Msg)
		}
	}
}

// dict100k is {"k0": [0, 0, 0], ...} with 100k keys.
func dict100k() *starlark.Dict {
	d := starlark.NewDict(100000)
	for i := 0; i < 100000; i++ {
		n := starlark.MakeInt(i)
		d.SetKey(starlark.String("k"+strconv.Itoa(i)), starlark.NewList([]starlark.Value{n, n, n}))
	}
	return d
}

func BenchmarkEncodeDict100k(b *testing.B) {
	d := dict100k()
	enc := transport.NewEncoder(nil)
	Encode(enc, d, 0)
	b.SetBytes(int64(enc.Len()))
	b.ReportAllocs()
	for b.Loop() {
		enc.Reset()
		Encode(enc, d, 0)
	}
}

func BenchmarkToStarlarkDict100k(b *testing.B) {
	enc := transport.NewEncoder(nil)
	Encode(enc, dict100k(), 0)
	v, err := transport.DecodeValue(enc.Bytes(), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(enc.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ToStarlark(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCancelLatency reports how long a running `while True: pass`
// takes to stop after its context is cancelled.
func BenchmarkCancelLatency(b *testing.B) {
	s := New(Options{})
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			s.Eval(ctx, "print('go')\nwhile True:\n    pass", "", func(string) { close(started) })
			close(done)
		}()
		<-started
		cancel()
		<-done
	}
}
