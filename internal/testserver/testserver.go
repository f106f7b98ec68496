// Package testserver starts real rshell servers for tests and benchmarks:
// in-process on 127.0.0.1:0, with TLS and token auth as `rshell serve`
// runs them, and shut down by the test that started them; and CutProxy, a
// link between client and server that a test can cut. Only test files
// import it.
package testserver

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// Token is the token every test server requires.
var Token = []byte("test-token-0123456789abcdef0123456789")

var (
	certOnce sync.Once
	cert     tls.Certificate
	certErr  error
)

// Cert is the certificate every test server presents (one per process).
func Cert(tb testing.TB) tls.Certificate {
	tb.Helper()
	certOnce.Do(func() {
		var c, k []byte
		if c, k, certErr = transport.SelfSignedPEM(); certErr == nil {
			cert, certErr = tls.X509KeyPair(c, k)
		}
	})
	if certErr != nil {
		tb.Fatal(certErr)
	}
	return cert
}

// Server is a running test server.
type Server struct {
	Srv  *server.Server
	Addr string
	Opts transport.Options // dial options that reach it (token, pinned certificate)
}

// Start runs a server; edit, if not nil, adjusts its config first.
func Start(tb testing.TB, edit func(*server.Config)) *Server {
	tb.Helper()
	c := Cert(tb)
	cfg := server.Config{
		Token: Token, TLS: transport.ServerTLSConfig(c, nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := server.Listen("127.0.0.1:0")
	if err != nil {
		srv.Close()
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
	return &Server{Srv: srv, Addr: ln.Addr().String(), Opts: transport.Options{
		Token: Token, Trust: transport.TrustOptions{Fingerprint: transport.Fingerprint(c.Certificate[0])},
	}}
}

// Dial connects a client, closed when the test ends.
func (s *Server) Dial(tb testing.TB) *transport.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, s.Addr, s.Opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
