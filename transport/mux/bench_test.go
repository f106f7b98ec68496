package mux

import (
	"io"
	"testing"
)

// BenchmarkRoundTrip: 16 bytes each way on one stream, echoed by the
// server, over loopback under TLS 1.3 (as rshell runs it) and over plain
// TCP. Compare with bench/bench_test.go's BenchmarkStreamRoundTrip, whose
// yamux-tcp case is yamux's floor.
func BenchmarkRoundTrip(b *testing.B) {
	for _, k := range []transportKind{overTLS, overTCP} {
		b.Run(string(k), func(b *testing.B) {
			c, s := pair(b, k, Config{}, Config{})
			served := async(func() error {
				st, err := s.Accept()
				if err != nil {
					return err
				}
				buf := make([]byte, 16)
				for {
					if _, err := io.ReadFull(st, buf); err != nil {
						return err
					}
					if _, err := st.Write(buf); err != nil {
						return err
					}
				}
			})
			st, err := c.Open()
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 16)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(st, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st.Close()
			if err := <-served; err != io.EOF {
				b.Fatalf("server: %v, want io.EOF", err)
			}
		})
	}
}
