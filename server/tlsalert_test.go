package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// A client that refuses the server's certificate (not the pinned one)
// still tells the server why: its TLS alert goes out before it hangs up,
// though it writes nothing else before its next read (the client holds
// its writes after the server's first flight; see transport's corkConn).
func TestRefusedCertificateIsToldToTheServer(t *testing.T) {
	ts := start(t, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := ts.opts
	o.Trust.Fingerprint = "sha256:" + strings.Repeat("A", 43) + "="
	if c, err := transport.Dial(ctx, ts.addr, o); !errors.Is(err, transport.ErrFingerprintDiff) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("a certificate not the pinned one: %v", err)
	}
	for i := 0; i < 500 && !strings.Contains(ts.logs.String(), "refused by the client"); i++ {
		time.Sleep(10 * time.Millisecond) // bounded poll of the server's log
	}
	if log := ts.logs.String(); !strings.Contains(log, "bad certificate") {
		t.Fatalf("the server's log does not say the client refused the certificate:\n%s", log)
	}
}

// A client holding a TLS session from before the server restarted offered
// it with a classical key exchange only (see transport's
// resumeKeyExchanges): it refuses the classical full handshake the new
// server answers with, which the server logs as such, and connects with a
// post-quantum one in the same Dial. The next connect resumes.
func TestReconnectAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := start(t, false, nil)
	o := first.opts
	o.Trust.SessionCache = tls.NewLRUClientSessionCache(4)
	eval := func(ts *testServer) {
		t.Helper()
		c, err := transport.Dial(ctx, ts.addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v, err := c.Eval(ctx, "1+1", nil); err != nil || v.Int != 2 {
			t.Fatalf("1+1: %v %v", v, err)
		}
	}
	eval(first)
	eval(first)
	first.srv.Close()
	second := startOn(t, first.addr, false, nil)
	eval(second)
	eval(second)
	const refusal = "it held a TLS session from before this server restarted"
	for i := 0; i < 500 && !strings.Contains(second.logs.String(), refusal); i++ {
		time.Sleep(10 * time.Millisecond) // bounded poll: the refused connection is logged by its own goroutine
	}
	if n := strings.Count(second.logs.String(), refusal); n != 1 {
		t.Fatalf("the restarted server logged %d refusals by the client, want 1:\n%s", n, second.logs.String())
	}
	if log := first.logs.String(); strings.Contains(log, "refused") {
		t.Fatalf("a resumed connect was refused:\n%s", log)
	}
}

// With its session-ticket keys kept in a file (as `rshell serve` keeps them
// in its state dir), a restarted server resumes the sessions of its
// clients: their first connect after the restart is resumed, not refused
// and made again.
func TestReconnectAfterRestartWithKeptTicketKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "ticket-keys")
	keep := func(cfg *server.Config) {
		tk, err := transport.OpenTicketKeys(path, transport.Fingerprint(cfg.TLS.Certificates[0].Certificate[0]))
		if err != nil {
			t.Fatal(err)
		}
		tk.Apply(cfg.TLS)
	}
	first := start(t, false, keep)
	o := first.opts
	o.Trust.SessionCache = tls.NewLRUClientSessionCache(4)
	eval := func(ts *testServer, resumed bool) {
		t.Helper()
		c, err := transport.Dial(ctx, ts.addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.TLSResumed() != resumed {
			t.Fatalf("connect resumed %v, want %v", c.TLSResumed(), resumed)
		}
		if v, err := c.Eval(ctx, "1+1", nil); err != nil || v.Int != 2 {
			t.Fatalf("1+1: %v %v", v, err)
		}
	}
	eval(first, false)
	eval(first, true)
	first.srv.Close()
	second := startOn(t, first.addr, false, keep)
	eval(second, true)
	eval(second, true)
}
