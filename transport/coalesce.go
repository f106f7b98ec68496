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
// yamux's single send loop is the only writer, so at most one header is
// ever held. The joined buffer comes from a pool, so an idle connection
// holds no buffer at all.
type coalescingConn struct {
	net.Conn
	mu      sync.Mutex
	held    bool
	pending [yamuxHeaderSize]byte
}

const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func newCoalescingConn(c net.Conn) *coalescingConn { return &coalescingConn{Conn: c} }

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		copy(c.pending[:], p)
		c.held = true
		return len(p), nil
	}
	if !c.held {
		return c.Conn.Write(p)
	}
	c.held = false
	bp := joinPool.Get().(*[]byte)
	buf := append(append((*bp)[:0], c.pending[:]...), p...)
	_, err := c.Conn.Write(buf)
	if cap(buf) <= 1<<20 {
		*bp = buf
		joinPool.Put(bp)
	}
	return len(p), err
}
