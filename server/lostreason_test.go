package server_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

// blackHole forwards one connection to target until cut, then swallows
// everything both ways while keeping the TCP connections open: a network
// gone silent, as a client sees it.
type blackHole struct {
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
	pumped sync.WaitGroup
}

func newBlackHole(t *testing.T, target string) *blackHole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c, s)
			b.mu.Unlock()
			b.pumped.Add(2)
			go b.pump(s, c)
			go b.pump(c, s)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.pumped.Wait()
	})
	return b
}

func (b *blackHole) pump(dst, src net.Conn) {
	defer b.pumped.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		b.mu.Lock()
		cut := b.cut
		b.mu.Unlock()
		if cut {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestClientLostReason: a client whose connection dies says why in
// words for a user — pings unanswered, or the server closing it.
func TestClientLostReason(t *testing.T) {
	ts := start(t, false, nil)
	bh := newBlackHole(t, ts.addr)
	opts := ts.opts
	opts.Mux.KeepAlive, opts.Mux.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	c, err := transport.Dial(context.Background(), bh.ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bh.mu.Lock()
	bh.cut = true
	bh.mu.Unlock()
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
