package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// countingWriter records how many Write calls a frame took.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestFrameRoundTripInOneWrite(t *testing.T) {
	msgs := []*Msg{
		{T: TEval, Seq: 7, Src: "x = 1", File: "<in[1]>", DeadlineMS: 1000},
		{T: TResult, Seq: 7, Value: EncodeValue(List(Int(1), String("\xff")))},
		{T: TError, Err: &ErrorInfo{Kind: KindRuntime, Msg: "boom", Frames: []FrameInfo{{File: "f", Line: 1, Col: 2, Func: "g", Source: "x"}}}},
		{T: TOut, Text: "not utf8 \xff\n"},
	}
	for _, m := range msgs {
		var w countingWriter
		if err := WriteMsg(&w, m, 0); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Fatalf("%s frame took %d writes", m.T, w.writes)
		}
		got, err := ReadMsg(&w, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.T != m.T || got.Seq != m.Seq || got.Src != m.Src || got.Text != m.Text || !bytes.Equal(got.Value, m.Value) {
			t.Fatalf("got %+v want %+v", got, m)
		}
	}
}

func TestFrameLimits(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	if _, err := ReadMsg(bytes.NewReader(hdr[:]), 1<<20); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := ReadMsg(bytes.NewReader([]byte{0, 0, 0, 5, 1}), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ReadMsg(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	deep := append(bytes.Repeat([]byte{0x81}, 10000), 0xf6)
	if _, err := DecodeMsg(deep); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deep: %v", err)
	}
	if _, err := DecodeMsg([]byte{0xa0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no type: %v", err)
	}
	var w countingWriter
	if err := WriteMsg(&w, &Msg{T: TData, Data: make([]byte, 2000)}, 1000); !errors.Is(err, ErrFrameTooLarge) || w.writes != 0 {
		t.Fatalf("write over cap: %v (%d writes)", err, w.writes)
	}
}

func FuzzDecodeMsg(f *testing.F) {
	for _, m := range []*Msg{
		{T: THello, Version: 1, Proof: []byte{1, 2}},
		{T: TEval, Seq: 1, Src: "1+1"},
		{T: TResult, Value: EncodeValue(Dict(String("a"), Int(1)))},
		{T: TError, Err: &ErrorInfo{Kind: "runtime", Msg: "x", Frames: []FrameInfo{{File: "a"}}}},
	} {
		b, _ := AppendFrame(nil, m)
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMsg(b)
		if err != nil {
			return
		}
		if len(m.Value) > 0 {
			_, _ = DecodeValue(m.Value, 100)
		}
		if _, err := AppendFrame(nil, m); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func BenchmarkFrameEncodeDecode(b *testing.B) {
	m := &Msg{T: TEval, Seq: 12345, Src: "1+1", File: "<in[1]>"}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf, _ = AppendFrame(buf[:0], m)
		if _, err := DecodeMsg(buf[4:]); err != nil {
			b.Fatal(err)
		}
	}
}
