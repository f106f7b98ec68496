package bench

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// BenchmarkChunkLatencyStateDir is one chunk that changes the namespace
// (x = x + 1) on a reused connection, over loopback TLS, with the session
// kept in memory only and with a state dir (the change written and synced
// before the answer). The difference is the cost of durability per chunk.
func BenchmarkChunkLatencyStateDir(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "statedir"
		}
		b.Run(name, func(b *testing.B) {
			dir := ""
			if durable {
				dir = b.TempDir()
			}
			s := startDurableServer(b, dir)
			c, err := transport.Dial(context.Background(), s.addr, s.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if _, err := c.Eval(ctx, "x = 0", nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.Exec(ctx, transport.EvalRequest{Src: "x = x + 1"}, nil)
				if err != nil || r.Warn != "" {
					b.Fatal(err, r.Warn)
				}
			}
		})
	}
}

func startDurableServer(tb testing.TB, stateDir string) *testServer {
	tb.Helper()
	certPEM, keyPEM, err := transport.SelfSignedPEM()
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	tok := []byte("bench-token-0123456789abcdef0123456789")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Token: tok, TLS: transport.ServerTLSConfig(cert, nil), StateDir: stateDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		ln.Close()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &testServer{
		addr: ln.Addr().String(),
		opts: transport.Options{Token: tok, Trust: transport.TrustOptions{Fingerprint: transport.Fingerprint(cert.Certificate[0])}},
	}
}
