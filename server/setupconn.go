package server

import (
	"context"
	"net"
	"sync"
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
	g *handshakeGate

	mu       sync.Mutex
	armed    bool
	finished bool
	since    time.Time // the turn held began then; zero: none held
	turns    int
}

// maxSetupTurns bounds the turns of a connection that never attaches (one
// that only runs errands, or a peer that trickles its frames).
const maxSetupTurns = 8

func (c *setupConn) NetConn() net.Conn { return c.Conn }

// arm starts the turns: the TLS flight is out.
func (c *setupConn) arm() {
	c.mu.Lock()
	c.armed = !c.finished
	c.mu.Unlock()
}

// Read ends the turn held, reads, and takes a turn if it got data while
// the setup is on (waiting at most the gate's wait; past it the read
// fails with errHandshakeBusy and the connection with it).
func (c *setupConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	c.endLocked()
	gated := c.armed && !c.finished
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
	if c.finished || !c.since.IsZero() {
		c.mu.Unlock()
		return nil
	}
	c.turns++
	if c.turns > maxSetupTurns {
		c.finished = true
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := c.g.acquire(context.Background(), c); err != nil {
		return err
	}
	c.mu.Lock()
	c.since = time.Now()
	if c.finished { // the attach ended the setup meanwhile
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
func (c *setupConn) finish() {
	c.mu.Lock()
	c.endLocked()
	c.finished = true
	c.mu.Unlock()
}

// attachTurn takes a turn on the gate for an attach on a connection still
// being set up; what it returns gives the turn back and ends the setup.
func (c *conn) attachTurn() (end func()) {
	if c.setup == nil {
		return func() {}
	}
	c.setup.mu.Lock()
	gated := c.setup.armed && !c.setup.finished
	c.setup.mu.Unlock()
	var since time.Time
	if gated && c.srv.gate.acquire(context.Background(), c.setup) == nil {
		since = time.Now()
	}
	return func() {
		if !since.IsZero() {
			c.srv.gate.release(since, c.setup)
		}
		c.setup.finish()
	}
}
