package server

import (
	"net"
	"sync/atomic"
	"time"
)

// Liveness without a goroutine or a timer per connection: every read
// stamps its connection, and one sweeper pings only the connections that
// have been silent for a keepalive interval (clients ping on their own, so
// a healthy idle connection is rarely pinged at all). A ping left
// unanswered for the write timeout closes the connection, which finds a
// client that is stopped or hung as well as a dead network; the kernel's
// TCP keepalive (set on every accepted connection) finds dead peers too.

// stampConn records when its connection last read anything.
type stampConn struct {
	net.Conn
	last  *atomic.Int64 // unix nanoseconds
	pause *atomic.Int64 // unix nanoseconds: no reading before then
}

// NetConn is the connection it wraps (the multiplexer closes the bottom one
// first).
func (s stampConn) NetConn() net.Conn { return s.Conn }

func (s stampConn) Read(p []byte) (int, error) {
	if p := s.pause.Load(); p != 0 { // only a connection that sent malformed frames
		if d := time.Until(time.Unix(0, p)); d > 0 {
			time.Sleep(d) // its own reader waits
		}
	}
	n, err := s.Conn.Read(p)
	if n > 0 {
		s.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// livenessLoop is the sweeper.
func (s *Server) livenessLoop() {
	defer s.wg.Done()
	ka := s.keepAlive()
	t := time.NewTicker(max(ka/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.baseCtx.Done():
			return
		}
		now := time.Now().UnixNano()
		s.mu.Lock()
		for c := range s.conns {
			if now-c.lastRead.Load() > int64(ka) && c.pinging.CompareAndSwap(false, true) {
				c.mu.Lock()
				mux := c.mux
				c.mu.Unlock()
				if mux == nil { // still in its handshake, which has its own deadline
					c.pinging.Store(false)
					continue
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					defer c.pinging.Store(false)
					if _, err := mux.Ping(); err != nil && !mux.IsClosed() {
						s.log.Info("connection silent: no answer to a keepalive ping; closing it", "peer", c.peer)
						mux.Close()
					}
				}()
			}
		}
		s.mu.Unlock()
	}
}
