package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// setupConn is the socket of a connection being set up, as TLS reads it.
// Once the server's TLS flight is out (the gate's slot for it given back,
// arm), every read that brings data starts a turn on the handshake gate,
// and the connection's next read (a wait for the peer) ends it: the
// client's Finished, the hello, the multiplexer's first frames. The
// attach takes a turn of its own on its stream's goroutine (attachTurn),
// and its answer ends the setup (finish). A peer never holds a turn while
// the server waits for it, so a slow peer costs others nothing.
//
// Why: the gate kept a storm's TLS work to half the CPU, but the rest of
// each connection's setup ran freely and filled the gate's pauses, so the
// run queue stayed full and the Go scheduler, which polls the network
// when it is empty, noticed a connected client's request late. Eight
// alternating pairs of the 500-connection storm: the healthy client's p99
// 7.5–44.7× its baseline without (median 25×), 12.1–18.5× with (median
// 16×); with resumed TLS 6.4–44.9× against 6.7–14.8×.
type setupConn struct {
	net.Conn
	g        *handshakeGate
	finished atomic.Bool // the setup is over: reads are plain reads

	mu    sync.Mutex
	armed bool
	since time.Time // the turn held began then; zero: none held
	turns int
}

// maxSetupTurns bounds the turns of a connection that never attaches (one
// that only runs errands, or a peer that trickles its frames).
const maxSetupTurns = 8

func (c *setupConn) NetConn() net.Conn { return c.Conn }

// arm starts the turns: the TLS flight is out.
func (c *setupConn) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

// Read ends the turn held, reads, and takes a turn if it got data while
// the setup is on (waiting at most the gate's wait; past it the read
// fails with errHandshakeBusy and the connection with it). Once the setup
// is over, no turn is held (finish, turn), and a read is a plain read.
func (c *setupConn) Read(b []byte) (int, error) {
	if c.finished.Load() {
		return c.Conn.Read(b)
	}
	c.mu.Lock()
	c.endLocked()
	gated := c.armed
	c.mu.Unlock()
	n, err := c.Conn.Read(b)
	if n > 0 && gated {
		if terr := c.turn(); terr != nil {
			return n, terr
		}
	}
	return n, err
}

// turn takes a turn for this connection (waiting for the gate), unless
// its setup is over or it holds one.
func (c *setupConn) turn() error {
	c.mu.Lock()
	if c.finished.Load() || !c.since.IsZero() {
		c.mu.Unlock()
		return nil
	}
	c.turns++
	if c.turns > maxSetupTurns {
		c.finished.Store(true)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := c.g.acquire(context.Background(), c); err != nil {
		return err
	}
	c.mu.Lock()
	c.since = time.Now()
	if c.finished.Load() { // the attach ended the setup meanwhile
		c.endLocked()
	}
	c.mu.Unlock()
	return nil
}

func (c *setupConn) endLocked() {
	if c.since.IsZero() {
		return
	}
	c.g.release(c.since, c)
	c.since = time.Time{}
}

// finish ends the setup: the turn held is given back, and no more taken.
// A nil c (no handshake gate) has nothing to finish.
func (c *setupConn) finish() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.endLocked()
	c.finished.Store(true)
	c.mu.Unlock()
}

// attachTurn takes a turn on the gate for an attach while the setup is on;
// what it returns gives the turn back and ends the setup. A nil c (no
// handshake gate) takes none.
func (c *setupConn) attachTurn() (end func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	gated := c.armed && !c.finished.Load()
	c.mu.Unlock()
	var since time.Time
	if gated && c.g.acquire(context.Background(), c) == nil {
		since = time.Now()
	}
	return func() {
		if !since.IsZero() {
			c.g.release(since, c)
		}
		c.finish()
	}
}
