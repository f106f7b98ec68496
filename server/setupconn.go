package server

import (
	"net"
	"sync"
	"time"
)

// setupConn is the socket of a connection being set up, as TLS reads it.
// Once the server's TLS flight is out (the gate's slot for it given back,
// arm), every read that brings data starts a turn on the handshake gate,
// and the connection's next read (a wait for the peer) ends it: the
// client's Finished, the hello, the multiplexer's first frames. The
// attach takes a turn of its own (turn), and ends the setup (finish).
//
// Why: the gate kept a storm's TLS work to half the CPU, but the rest of
// each connection's setup ran freely and filled the gate's pauses, so
// the run queue never emptied and the Go scheduler looked at the network
// only every 10 ms (sysmon): a connected client's request waited that
// long to be noticed.
type setupConn struct {
	net.Conn
	g *handshakeGate

	mu       sync.Mutex
	armed    bool
	finished bool
	since    time.Time // the turn held began then; zero: none held
	turns    int
}

// maxSetupTurns bounds the turns of a connection that never attaches.
const maxSetupTurns = 8

func (c *setupConn) NetConn() net.Conn { return c.Conn }

func (c *setupConn) arm() {
	c.mu.Lock()
	c.armed = !c.finished
	c.mu.Unlock()
}

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
	if err := c.g.acquire(); err != nil {
		return err
	}
	c.mu.Lock()
	c.since = time.Now()
	c.mu.Unlock()
	return nil
}

// endTurn gives back the turn held, if any.
func (c *setupConn) endTurn() {
	c.mu.Lock()
	c.endLocked()
	c.mu.Unlock()
}

func (c *setupConn) endLocked() {
	if c.since.IsZero() {
		return
	}
	c.g.release(c.since)
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
	if gated && c.srv.gate.acquire() == nil {
		since = time.Now()
	}
	return func() {
		if !since.IsZero() {
			c.srv.gate.release(since)
		}
		c.setup.finish()
	}
}
