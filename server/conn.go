package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
)

// conn is one client connection: a handshake, then a multiplexed session
// whose first stream attaches to a session and carries its chunks.
type conn struct {
	srv  *Server
	raw  net.Conn
	peer string

	lastRead   atomic.Int64 // unix ns of the last read (liveness.go)
	badFrames  atomic.Int32 // malformed frames so far (protocolError)
	pauseUntil atomic.Int64 // unix nanoseconds: reading stops until then (BadFramePause)
	pinging    atomic.Bool

	setup   *setupConn     // nil without a handshake gate
	settle  *time.Timer    // counts the connection as settled at settleAge
	settled atomic.Int32   // 0 not yet, 1 counted in Server.settled, 2 closed
	streams chan struct{}  // one token per stream being served (MaxStreams)
	swg     sync.WaitGroup // stream goroutines
	end     func()         // releases the connection's slot, once it is over

	mu     sync.Mutex
	mux    *mux.Session
	h      *hosted // the attached session
	closed bool
}

func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	mux := c.mux
	c.mu.Unlock()
	if mux != nil {
		mux.Close()
	}
	c.raw.Close()
}

func (c *conn) attached() *hosted {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h
}

// handshake runs TLS and the hello and starts the multiplexer. It returns
// nil when the connection is refused or gone, having closed it.
//
// It runs on a goroutine of its own, which ends with it: the TLS handshake
// grows a goroutine's stack to tens of KiB, which an idle connection would
// otherwise keep. After it, the connection holds only the multiplexer's
// reader goroutine and one per stream being served (onStream), and ends
// in onClose.
func (c *conn) handshake() (m *mux.Session) {
	s := c.srv
	log := s.log.With("peer", c.peer)
	defer func() {
		if m == nil {
			c.raw.Close()
			c.setup.finish()
		}
	}()
	log.Debug("connection accepted")
	if tc, ok := c.raw.(*net.TCPConn); ok {
		// Go sets TCP_NODELAY on every TCP connection. Dead peers are
		// found by the kernel: probes after KeepAlive of silence, three
		// more a third of it apart, then the connection is reset (about
		// 2×KeepAlive in all, as yamux pings would take). A listener from
		// Listen spares each accept Go's own keepalive settings first.
		ka := s.keepAlive()
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: ka, Interval: max(ka/3, time.Second), Count: 3})
	}
	if wait, bad := s.auth.blocked(c.peer); bad {
		s.warnPeer(log, c.peer, "connection refused: too many failed handshakes", "retry_in", wait.Round(time.Second))
		s.refuseDelay()
		refuse(c.raw, s.cfg.TLS, transport.KindAuth, fmt.Sprintf("too many failed attempts from your address — try again in %s", wait.Round(time.Second)))
		return
	}
	under := transport.QuietConn(c.raw) // the connection TLS sees: the gate's key
	if s.gate != nil {
		c.setup = &setupConn{Conn: under, g: s.gate}
		under = c.setup
	}
	nc := under
	if s.cfg.TLS != nil {
		nc = tls.Server(under, s.cfg.TLS)
	}
	logged := false
	refused := func(agent string, err error) {
		logged = true
		if errors.Is(err, transport.ErrAuth) {
			n := s.auth.fail(c.peer) // only wrong tokens count: a slow or broken peer must not lock others out
			s.warnPeer(log, c.peer, "connection refused: wrong token", "agent", agent, "failures", n)
		} else {
			msg := "connection refused: handshake failed"
			if strings.Contains(err.Error(), "remote error: tls: bad certificate") {
				// The client's alert (see transport's resumeKeyExchanges).
				msg = "connection refused by the client: its pin of this server's certificate differs, or it held a TLS session from before this server restarted and dials again"
			}
			s.warnPeer(log, c.peer, msg, "agent", agent, "err", err)
			if n, _ := s.badHellos.add(c.peer, time.Now()); n > s.cfg.AuthFailures {
				s.refuseDelay() // the TLS handshake is done and its slot given back
			}
		}
	}
	agent, err := transport.ServerHandshake(nc, s.cfg.Token, &s.info, "rshell "+Version, s.cfg.HandshakeTimeout, refused)
	if s.gate != nil {
		s.gate.done(under)
	}
	if err != nil {
		if !logged {
			refused(agent, err)
		}
		lingerClose(nc)
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	// The multiplexer resets streams beyond twice the limit; up to that,
	// onStream answers the excess with a clear error.
	m = transport.ServerMux(stampConn{Conn: nc, last: &c.lastRead, pause: &c.pauseUntil}, transport.MuxOptions{
		NoKeepAlive: true, WriteTimeout: s.cfg.WriteTimeout, MaxStreams: 2 * s.cfg.MaxStreams,
		Plaintext: s.cfg.TLS == nil, OnStream: c.onStream, OnClose: c.onClose,
	})
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		m.Close() // onClose ends the connection
		return m
	}
	c.mux = m
	c.settle = time.AfterFunc(settleAge, func() {
		if c.settled.CompareAndSwap(0, 1) {
			s.settled.Add(1)
		}
	})
	c.mu.Unlock()
	log.Info("connection authenticated", "agent", agent)
	return m
}

// onStream serves a stream the client opened, on a goroutine of its own;
// past MaxStreams at once, it answers with a clear error instead.
func (c *conn) onStream(st *mux.Stream) {
	s := c.srv
	c.swg.Add(1)
	select {
	case c.streams <- struct{}{}:
		go func() {
			defer c.swg.Done()
			defer func() { <-c.streams }()
			c.serveStream(st)
		}()
	default:
		s.warnPeer(s.log, c.peer, "stream refused: too many concurrent streams", "peer", c.peer, "max_streams", s.cfg.MaxStreams)
		go func() {
			defer c.swg.Done()
			_ = st.SetDeadline(time.Now().Add(2 * time.Second))
			_ = transport.WriteMsg(st, errMsg(0, transport.KindLimit, fmt.Sprintf("too many concurrent requests on this connection (limit %d)", s.cfg.MaxStreams)), 0)
			st.Close()
		}()
	}
}

// onClose runs when the connection's session has ended: it waits for the
// streams being served, then detaches the connection's session.
func (c *conn) onClose(error) {
	defer c.end()
	c.setup.finish()
	c.mu.Lock()
	if c.settle != nil {
		c.settle.Stop()
	}
	c.mu.Unlock()
	if c.settled.Swap(2) == 1 {
		c.srv.settled.Add(-1)
	}
	c.swg.Wait() // the session closed the connection, so they are ending
	sid := ""
	if h := c.attached(); h != nil {
		sid = h.id
		c.srv.reg.detach(h)
	}
	c.srv.log.Info("connection closed", "peer", c.peer, "session", shortID(sid))
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func errMsg(seq uint64, kind, msg string) *transport.Msg {
	return &transport.Msg{T: transport.TError, Seq: seq, Err: &transport.ErrorInfo{Kind: kind, Msg: msg}}
}

// serveStream reads a stream's first frame and dispatches it.
func (c *conn) serveStream(st *mux.Stream) {
	defer st.Close()
	// No read buffer: the stream holds what arrived, and an idle
	// connection should not keep one.
	m, err := transport.ReadMsg(st, c.srv.cfg.MaxFrame)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.protocolError(st, err)
		}
		return
	}
	if m.T == transport.TAttach {
		c.serveEval(st, st, m)
		return
	}
	c.serveErrand(st, st, m)
}

// protocolError answers a malformed frame and logs it.
func (c *conn) protocolError(st *mux.Stream, err error) {
	msg := "malformed frame"
	switch {
	case errors.Is(err, transport.ErrFrameTooLarge):
		msg = fmt.Sprintf("frame too large (the cap is %d bytes)", c.srv.cfg.MaxFrame)
	case errors.Is(err, transport.ErrMalformed):
		msg = err.Error()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return
	default:
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, mux.ErrStreamClosed) || errors.Is(err, mux.ErrStreamReset) || errors.Is(err, mux.ErrSessionClosed) {
			return
		}
	}
	n := c.badFrames.Add(1)
	if d := c.srv.cfg.BadFramePause; n > freeBadFrames && d > 0 {
		// Stop reading this connection for a while, and answer after it:
		// a client that waits for each answer, and one that does not,
		// both slow down.
		c.pauseUntil.Store(time.Now().Add(d).UnixNano())
		c.srv.wait(d)
	}
	if n > maxBadFrames {
		if n == maxBadFrames+1 {
			c.srv.log.Warn("closing the connection: too many malformed frames", "peer", c.peer, "count", n)
			_ = transport.WriteMsg(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("%s; that is %d malformed frames on this connection, which the server now closes", msg, n)), 0)
			c.close()
		}
		return
	}
	c.srv.warnPeer(c.srv.log, c.peer, "bad frame from client", "peer", c.peer, "err", err)
	_ = transport.WriteMsg(st, errMsg(0, transport.KindProtocol, msg), 0)
}

// maxBadFrames is how many malformed frames a connection may send before
// the server closes it: a client that sends one has a bug, one that keeps
// sending them costs the server for nothing.
const maxBadFrames = 16

// freeBadFrames is how many malformed frames a connection sends before
// each further one pauses its reading (Config.BadFramePause).
const freeBadFrames = 4

// refuseDelay waits AuthRefuseDelay before a refusal.
func (s *Server) refuseDelay() {
	if d := s.cfg.AuthRefuseDelay; d > 0 {
		s.wait(d)
	}
}

// wait sleeps for d, or until the server shuts down.
func (s *Server) wait(d time.Duration) { sleepCtx(s.baseCtx, d) }

// write sends a frame. A write timeout has closed the whole connection
// (the multiplexer does that, so that the peer does not hang on a
// half-written frame: yamux's GO-2025-3408); it is logged here.
func (c *conn) write(st *mux.Stream, m *transport.Msg) error {
	err := transport.WriteMsg(st, m, 0)
	if errors.Is(err, mux.ErrWriteTimeout) {
		c.srv.log.Warn("write timed out; closing the connection", "peer", c.peer)
		c.close()
	}
	return err
}
