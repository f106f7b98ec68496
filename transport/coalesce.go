package transport

import (
	"encoding/binary"
	"net"
	"sync"
)

// yamux v0.1.2 writes each frame's 12-byte header and its body with two
// separate Write calls: two syscalls and, under TLS, two records. A
// coalescingConn holds back a data-frame header that announces a body and
// sends it together with that body in one Write. Headers of frames without a
// body (window updates, pings, empty SYN/FIN) go out at once.
//
// yamux's single send loop is the only writer, so at most one header is ever held.
type coalescingConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
	buf     []byte
}

const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

func newCoalescingConn(c net.Conn) *coalescingConn {
	return &coalescingConn{Conn: c, buf: make([]byte, 0, 64<<10)}
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		c.pending = append(c.buf[:0], p...)
		return len(p), nil
	}
	if c.pending != nil {
		c.buf = append(c.pending, p...)
		c.pending = nil
		_, err := c.Conn.Write(c.buf)
		if cap(c.buf) > 1<<20 {
			c.buf = make([]byte, 0, 64<<10)
		}
		return len(p), err
	}
	return c.Conn.Write(p)
}
