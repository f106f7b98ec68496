package server_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

// TestIdleConnectionCost: an idle, attached connection holds two server
// goroutines (the multiplexer's reader and the eval stream's reader) and
// no OS thread of its own: frames are written by their senders, and new
// streams arrive in a callback, not to a goroutine blocked in Accept. Keepalive is the kernel's
// (TCP), not a goroutine and a timer per connection; the TLS handshake's
// big stack is not kept.
func TestIdleConnectionCost(t *testing.T) {
	ts := start(t, false, nil)
	healthy(t, ts)
	const n = 50
	// Client side: the multiplexer's reader and keepalive ticker.
	const perConn = 2 + 2
	base := runtime.NumGoroutine()
	ctx := context.Background()
	var clients []*transport.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range n {
		c, err := transport.Dial(ctx, ts.addr, ts.opts)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	// Goroutines that finish the handshake exit a moment after the client
	// sees it done: wait (bounded) for the count to settle.
	deadline := time.Now().Add(10 * time.Second)
	got := runtime.NumGoroutine() - base
	for got > n*perConn && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // bounded poll: no event marks a goroutine's exit
		got = runtime.NumGoroutine() - base
	}
	if got > n*perConn {
		t.Errorf("%d idle connections hold %d goroutines (both sides), want at most %d per connection", n, got, perConn)
	}
}
