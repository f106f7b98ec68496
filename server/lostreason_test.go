package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/transport"
)

// TestClientLostReason: a client whose connection dies says why in
// words for a user — pings unanswered, or the server closing it.
func TestClientLostReason(t *testing.T) {
	ts := start(t, false, nil)
	bh := testserver.StartCutProxy(t, ts.addr)
	opts := ts.opts
	opts.Mux.KeepAlive, opts.Mux.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	c, err := transport.Dial(context.Background(), bh.Addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bh.SetCut(true)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a silent network was not noticed")
	}
	if r := c.LostReason(); !strings.Contains(r, "keepalive") {
		t.Errorf("silent network: %q, want it to name the unanswered keepalive", r)
	}

	c2, err := transport.Dial(context.Background(), ts.addr, ts.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ts.srv.Close()
	select {
	case <-c2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server's close was not noticed")
	}
	if r := c2.LostReason(); r != "the connection closed" {
		t.Errorf("server closed: %q", r)
	}
}
