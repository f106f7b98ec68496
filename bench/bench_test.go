package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/hashicorp/yamux"
	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/transport"
)

// startServer is an in-process server on 127.0.0.1 with TLS and token
// auth, configured as `rshell serve` is.
func startServer(tb testing.TB) *testserver.Server { return testserver.Start(tb, nil) }

// BenchmarkEvalRTT is one trivial chunk (1+1) on a reused connection: the
// client's request, the server's parse, eval and encode, and the reply.
func BenchmarkEvalRTT(b *testing.B) {
	c := startServer(b).Dial(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := c.Eval(ctx, "1+1", nil)
		if err != nil || v.Int != 2 {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkEvalParallel is 1+1 from several connections at once.
func BenchmarkEvalParallel(b *testing.B) {
	s := startServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := s.Dial(b)
		for pb.Next() {
			if _, err := c.Eval(ctx, "1+1", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReplicateDict is a full local copy of a dict of N string keys
// to 3-int lists: server conversion and encoding, transfer, client decoding.
func BenchmarkReplicateDict(b *testing.B) {
	s := startServer(b)
	ctx := context.Background()
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("N%d", n), func(b *testing.B) {
			c := s.Dial(b)
			if _, err := c.Eval(ctx, fmt.Sprintf("d = {'k%%d' %% i: [i, i + 1, i + 2] for i in range(%d)}", n), nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				v, err := c.Eval(ctx, "d", nil)
				if err != nil || v.Len() != n {
					b.Fatal(v.Len(), err)
				}
			}
		})
	}
}

// BenchmarkStreamRoundTrip is 16 bytes each way on one reused stream:
// "tls-mux" is rshell's multiplexer (transport.ServerMux/ClientMux) over
// TLS 1.3 on loopback, the transport floor under eval_rtt (and the
// multiplexer's own round-trip benchmark); "yamux-tcp" is stock yamux on
// plain TCP, for comparison.
func BenchmarkStreamRoundTrip(b *testing.B) {
	b.Run("tls-mux", func(b *testing.B) {
		certPEM, keyPEM, err := transport.SelfSignedPEM()
		if err != nil {
			b.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			b.Fatal(err)
		}
		cfg := transport.ServerTLSConfig(cert, nil)
		streamRoundTrip(b,
			func(c net.Conn) (func() (io.ReadWriteCloser, error), io.Closer, error) {
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return nil, nil, err
				}
				s := transport.ServerMux(tc, transport.MuxOptions{})
				return func() (io.ReadWriteCloser, error) { return s.Accept() }, s, nil
			},
			func(c net.Conn) (func() (io.ReadWriteCloser, error), io.Closer, error) {
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
				if err := tc.Handshake(); err != nil {
					return nil, nil, err
				}
				s := transport.ClientMux(tc, transport.MuxOptions{})
				return func() (io.ReadWriteCloser, error) { return s.Open() }, s, nil
			})
	})
	b.Run("yamux-tcp", func(b *testing.B) {
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		streamRoundTrip(b,
			func(c net.Conn) (func() (io.ReadWriteCloser, error), io.Closer, error) {
				s, err := yamux.Server(c, cfg)
				return func() (io.ReadWriteCloser, error) { return s.Accept() }, s, err
			},
			func(c net.Conn) (func() (io.ReadWriteCloser, error), io.Closer, error) {
				s, err := yamux.Client(c, cfg)
				return func() (io.ReadWriteCloser, error) { return s.Open() }, s, err
			})
	})
}

// muxSide starts one side of a multiplexer on c: it returns how to get a
// stream (accept or open) and the session to close.
type muxSide func(c net.Conn) (func() (io.ReadWriteCloser, error), io.Closer, error)

func streamRoundTrip(b *testing.B, server, client muxSide) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accept, s, err := server(c)
		if err != nil {
			c.Close()
			return
		}
		defer s.Close()
		st, err := accept()
		if err != nil {
			return
		}
		buf := make([]byte, 16)
		for {
			if _, err := io.ReadFull(st, buf); err != nil {
				return
			}
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	open, s, err := client(raw)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st, err := open()
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
}

// BenchmarkConnectFirstEval is dial, TLS (resumed after the first
// iteration: the client session cache is process-wide), auth, attach and
// the first eval of 1+1, then close.
func BenchmarkConnectFirstEval(b *testing.B) {
	s := startServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := transport.Dial(ctx, s.Addr, s.Opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Eval(ctx, "1+1", nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkConnectFirstChunk is BenchmarkConnectFirstEval with the chunk
// sent in the same flight as the hello and the attach (Options.First), as
// rshell exec sends it: a round trip fewer.
func BenchmarkConnectFirstChunk(b *testing.B) {
	s := startServer(b)
	ctx := context.Background()
	o := s.Opts
	o.First = &transport.EvalRequest{Src: "1+1"}
	b.ReportAllocs()
	for b.Loop() {
		c, err := transport.Dial(ctx, s.Addr, o)
		if err != nil {
			b.Fatal(err)
		}
		if r, err := c.FirstResult(ctx, nil); err != nil || r.Value.Int != 2 {
			b.Fatal(r.Value, err)
		}
		c.Close()
	}
}
