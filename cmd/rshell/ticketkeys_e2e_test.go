//go:build unix

package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

var startedFingerprintRE = regexp.MustCompile(`\(tls (sha256:[A-Za-z0-9+/]+),`)

// `rshell serve` keeps its session-ticket keys in its state dir: a client
// process that connected before a restart (kill -9) resumes its TLS
// session after it.
func TestServeResumesTLSSessionsAfterRestart(t *testing.T) {
	env := testEnv(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	srv := startServerProc(t, env, "--token-file", tokFile)
	m := startedFingerprintRE.FindStringSubmatch(srv.log())
	if m == nil {
		t.Fatalf("no fingerprint in the log:\n%s", srv.log())
	}
	tok, err := transport.ReadTokenFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	o := transport.Options{Token: tok, Trust: transport.TrustOptions{Fingerprint: m[1], SessionCache: tls.NewLRUClientSessionCache(4)}}
	connect := func(resumed bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := transport.Dial(ctx, srv.addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.TLSResumed() != resumed {
			t.Fatalf("connect resumed %v, want %v; server log:\n%s", c.TLSResumed(), resumed, srv.log())
		}
		if v, err := c.Eval(ctx, "1+1", nil); err != nil || v.Int != 2 {
			t.Fatalf("1+1: %v %v", v, err)
		}
	}
	connect(false)
	connect(true)
	srv.kill()
	srv.start()
	connect(true)

	st, err := os.Stat(filepath.Join(srv.stateDir, "tls", "ticket-keys"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("ticket-keys mode %v, want 0600", st.Mode().Perm())
	}
}
