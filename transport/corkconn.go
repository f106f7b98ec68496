package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// corkConn holds a new connection's writes from its first read to its
// next one, then writes them at once: one system call and one segment
// for the client's TLS Finished, its hello, its attach (a stream's opening
// and a frame) and its first chunk, instead of five (strace of rshell
// exec), and the server finds them all in one read.
// From then on it passes writes and reads straight through.
//
// A read always sends what is held first, so nothing held can be waited
// for: a client writes before it waits for the answer. The first read is
// the server's first TLS flight (or, without TLS, its challenge); the
// client's first write, its ClientHello, goes out at once. A held write
// reports success; an error surfaces at the read that sends it.
type corkConn struct {
	net.Conn
	state atomic.Int32 // corkOpen, corkHolding, corkDone
	mu    sync.Mutex   // serialises holding and sending what is held
	held  []byte
}

const (
	corkOpen    = iota // before the first read: writes go out
	corkHolding        // writes are held until the next read
	corkDone           // straight through
)

func newCorkConn(c net.Conn) *corkConn { return &corkConn{Conn: c} }

func (c *corkConn) Write(p []byte) (int, error) {
	if c.state.Load() == corkDone {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	if c.state.Load() == corkHolding {
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *corkConn) Read(p []byte) (int, error) {
	if c.state.Load() == corkDone {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	switch {
	case c.state.Load() == corkOpen:
		c.state.Store(corkHolding)
	case len(c.held) > 0:
		held := c.held
		c.held = nil
		_, err := c.Conn.Write(held)
		c.state.Store(corkDone) // after the write: no later write may pass it
		if err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// sendHeld sends what is held, if anything, within 100 ms: for a
// connection about to be closed without another read (a TLS alert after a
// failed handshake, which tells the server why).
func (c *corkConn) sendHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Conn.Write(c.held)
		c.held = nil
	}
	c.state.Store(corkDone)
}

// NetConn is the connection it wraps (the multiplexer closes the bottom
// one first).
func (c *corkConn) NetConn() net.Conn { return c.Conn }
