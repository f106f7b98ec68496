package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	for i := 0; i < 500 && !strings.Contains(ts.logs.String(), "handshake failed"); i++ {
		time.Sleep(10 * time.Millisecond) // bounded poll of the server's log
	}
	if log := ts.logs.String(); !strings.Contains(log, "bad certificate") {
		t.Fatalf("the server's log does not say the client refused the certificate:\n%s", log)
	}
}
