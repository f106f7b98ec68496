package server_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a real server on 127.0.0.1:0, shut down by the test.
type testServer struct {
	srv  *server.Server
	addr string
	opts transport.Options
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	certOnce sync.Once
	testCert tls.Certificate
)

func cert(t testing.TB) tls.Certificate {
	certOnce.Do(func() {
		c, k, err := transport.SelfSignedPEM()
		if err != nil {
			t.Fatal(err)
		}
		testCert, err = tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
	})
	return testCert
}

// start runs a server with TLS (unless plaintext) and a token; edit
// adjusts the config first.
func start(t testing.TB, plaintext bool, edit func(*server.Config)) *testServer {
	t.Helper()
	return startOn(t, "127.0.0.1:0", plaintext, edit)
}

// startOn is start, listening on addr.
func startOn(t testing.TB, addr string, plaintext bool, edit func(*server.Config)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	tok := []byte("0123456789abcdef0123456789abcdef")
	cfg := server.Config{
		Token:            tok,
		Logger:           slog.New(slog.NewTextHandler(logs, nil)),
		HandshakeTimeout: 2 * time.Second,
	}
	opts := transport.Options{Token: tok, Plaintext: plaintext, CancelGrace: 2 * time.Second}
	if !plaintext {
		c := cert(t)
		cfg.TLS = transport.ServerTLSConfig(c, nil)
		opts.Trust = transport.TrustOptions{Fingerprint: transport.Fingerprint(c.Certificate[0])}
	}
	if edit != nil {
		edit(&cfg)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), opts: opts, logs: logs}
}

func (ts *testServer) dial(t testing.TB) *transport.Client {
	t.Helper()
	return ts.dialWith(t, ts.opts)
}

func (ts *testServer) dialWith(t testing.TB, o transport.Options) *transport.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, ts.addr, o)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func eval(t testing.TB, c *transport.Client, src string) transport.Value {
	t.Helper()
	v, err := c.Eval(testCtx(t), src, nil)
	if err != nil {
		t.Fatalf("eval %q: %v", src, err)
	}
	return v
}

// both runs f over TLS and over plain TCP.
func both(t *testing.T, f func(t *testing.T, plaintext bool)) {
	t.Run("tls", func(t *testing.T) { f(t, false) })
	t.Run("plain", func(t *testing.T) { f(t, true) })
}
