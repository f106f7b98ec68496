package server_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// A first chunk sent with the hello (Options.First): its output and value
// come back through FirstResult, it runs before any later chunk, one left
// unread is drained by the next Exec, a failing one is a RemoteError, and
// one that rides with a resume runs in the resumed session.
func TestFirstChunk(t *testing.T) {
	ts := start(t, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func(o transport.Options, src string) *transport.Client {
		t.Helper()
		o.First = &transport.EvalRequest{Src: src}
		c, err := transport.Dial(ctx, ts.addr, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	c := dial(ts.opts, "print('hi')\nx = 40\nx + 1")
	var out strings.Builder
	r, err := c.FirstResult(ctx, func(s string) { out.WriteString(s) })
	if err != nil || r.Value.Int != 41 || out.String() != "hi\n" {
		t.Fatalf("first chunk: %v %v, output %q", r.Value, err, out.String())
	}
	if _, err := c.FirstResult(ctx, nil); err == nil {
		t.Fatal("a second FirstResult must fail: there is no first chunk left")
	}
	r, err = c.Exec(ctx, transport.EvalRequest{Src: "x + 2"}, nil)
	if err != nil || r.Value.Int != 42 {
		t.Fatalf("the next chunk: %v %v", r.Value, err)
	}
	att, last := c.Attachment(), r.Seq

	// Not read: the next Exec drains it, and runs after it.
	c2 := dial(ts.opts, "y = 1")
	if v, err := c2.Eval(ctx, "y + 1", nil); err != nil || v.Int != 2 {
		t.Fatalf("after an unread first chunk: %v %v", v, err)
	}

	// A failing first chunk is the chunk's error, not the connection's.
	c3 := dial(ts.opts, "1 // 0")
	var re *transport.RemoteError
	if _, err := c3.FirstResult(ctx, nil); !errors.As(err, &re) || !strings.Contains(err.Error(), "zero") {
		t.Fatalf("a failing first chunk: %v", err)
	}

	// In a named namespace too.
	o := ts.opts
	o.NS = "team"
	c5 := dial(o, "z = 5")
	if v, err := c5.Eval(ctx, "z", nil); err != nil || v.Int != 5 {
		t.Fatalf("a first chunk in a named namespace: %v %v", v, err)
	}

	// With a resume, it runs in the resumed session, numbered after its
	// last chunk.
	c.Close()
	o = ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	c4 := dial(o, "x + 3")
	if r, err := c4.FirstResult(ctx, nil); err != nil || r.Value.Int != 43 || !c4.Attachment().Resumed {
		t.Fatalf("first chunk on a resume: %v %v (resumed %v)", r.Value, err, c4.Attachment().Resumed)
	}
	if r, err := c4.Exec(ctx, transport.EvalRequest{Src: "x"}, nil); err != nil || r.Seq != last+2 {
		t.Fatalf("numbering after a resumed first chunk: seq %d, want %d: %v", r.Seq, last+2, err)
	}
}

// A first chunk does not run when the attach is refused: Dial says why.
func TestFirstChunkAttachRefused(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.MaxSessions = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keep, err := transport.Dial(ctx, ts.addr, ts.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	o := ts.opts
	o.First = &transport.EvalRequest{Src: "1"}
	c, err := transport.Dial(ctx, ts.addr, o)
	if err == nil {
		c.Close()
		t.Fatal("a session past the limit was made")
	}
	if !strings.Contains(err.Error(), "limit") {
		t.Fatalf("refused attach: %v", err)
	}
}

// A connect given up after its first chunk was sent cancels the chunk: it
// may have started, and whoever gave up wants it stopped. A proxy passes
// the server's challenge, then holds the server's bytes, so the client
// waits for its welcome while the chunk runs (plaintext: the proxy sees
// the frames; the client sends its hello, attach and chunk once it has
// read the challenge).
func TestFirstChunkCancelledWithTheConnect(t *testing.T) {
	ts := start(t, true, nil)
	hold := testserver.StartCutProxy(t, ts.addr)
	hold.HoldAfterFirstFrame()
	proxy := hold.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o := ts.opts
	o.NS = "shared"
	watcher, err := transport.Dial(ctx, ts.addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	o.First = &transport.EvalRequest{Src: "while True:\n    pass\n"}
	dialed := make(chan error, 1)
	go func() {
		c, err := transport.Dial(dctx, proxy, o)
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	// The namespace runs one chunk at a time: once the loop runs, the
	// watcher's chunk waits.
	running := false
	for i := 0; i < 200 && !running; i++ {
		wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := watcher.Eval(wctx, "1", nil)
		wcancel()
		running = err != nil
	}
	if !running {
		t.Fatal("the first chunk never ran")
	}
	dcancel()
	if err := <-dialed; err == nil {
		t.Fatal("the connect succeeded through a proxy that held the server's answer")
	} else if !errors.Is(err, transport.ErrFirstCancelled) {
		t.Fatalf("the connect's error does not say its chunk was cancelled: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if v, err := watcher.Eval(wctx, "2", nil); err != nil || v.Int != 2 {
		t.Fatalf("the abandoned first chunk still holds the namespace: %v %v", v, err)
	}
}

// TestConnectCancelledBeforeTheFirstChunk: a connect given up before its
// chunk was sent (here: the server never answers the TCP connection's
// TLS) says nothing of a chunk cancelled.
func TestConnectCancelledBeforeTheFirstChunk(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	ts := start(t, false, nil)
	o := ts.opts
	o.First = &transport.EvalRequest{Src: "1"}
	ctx, cancel := context.WithCancel(context.Background())
	dialed := make(chan error, 1)
	go func() {
		c, err := transport.Dial(ctx, ln.Addr().String(), o)
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	silent := <-accepted // TCP is up; TLS waits for a server that says nothing
	if silent != nil {
		defer silent.Close()
	}
	cancel()
	err = <-dialed
	if err == nil || errors.Is(err, transport.ErrFirstCancelled) {
		t.Fatalf("a connect cancelled in its TLS handshake: %v", err)
	}
}
