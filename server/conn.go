package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rshell/rshell/transport"
)

// conn is one client connection: a handshake, then a yamux session whose
// first stream attaches to a session and carries its chunks.
type conn struct {
	srv  *Server
	raw  net.Conn
	peer string

	lastRead  atomic.Int64 // unix ns of the last read (liveness.go)
	badFrames atomic.Int32 // malformed frames so far (protocolError)
	pinging   atomic.Bool

	mu     sync.Mutex
	mux    *yamux.Session
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

// handshake runs TLS and the hello and starts yamux. It returns nil when
// the connection is refused or gone, having closed it.
//
// It runs on a goroutine of its own, and the connection's life after it on
// another (serveMux): the TLS handshake grows a goroutine's stack to tens
// of KiB, which an idle connection would otherwise keep.
func (c *conn) handshake() (mux *yamux.Session) {
	s := c.srv
	log := s.log.With("peer", c.peer)
	defer func() {
		if mux == nil {
			c.raw.Close()
		}
	}()
	log.Info("connection accepted")
	if tc, ok := c.raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		// Dead peers are found by the kernel: probes after KeepAlive of
		// silence, three more a third of it apart, then the connection is
		// reset (about 2×KeepAlive in all, as yamux pings would take).
		ka := s.keepAlive()
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: ka, Interval: max(ka/3, time.Second), Count: 3})
	}
	if wait, bad := s.auth.blocked(c.peer); bad {
		log.Warn("connection refused: too many failed handshakes", "retry_in", wait.Round(time.Second))
		refuse(c.raw, s.cfg.TLS, transport.KindAuth, fmt.Sprintf("too many failed attempts from your address — try again in %s", wait.Round(time.Second)))
		return
	}
	nc := c.raw
	if s.cfg.TLS != nil {
		nc = tls.Server(c.raw, s.cfg.TLS)
	}
	logged := false
	refused := func(agent string, err error) {
		logged = true
		if errors.Is(err, transport.ErrAuth) {
			n := s.auth.fail(c.peer) // only wrong tokens count: a slow or broken peer must not lock others out
			log.Warn("connection refused: wrong token", "agent", agent, "failures", n)
		} else {
			log.Warn("connection refused: handshake failed", "agent", agent, "err", err)
		}
	}
	agent, err := transport.ServerHandshake(nc, s.cfg.Token, &s.info, "rshell "+Version, s.cfg.HandshakeTimeout, refused)
	if s.gate != nil {
		s.gate.done(c.raw)
	}
	if err != nil {
		if !logged {
			refused(agent, err)
		}
		lingerClose(nc)
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	m, err := transport.ServerMux(stampConn{Conn: nc, last: &c.lastRead}, transport.MuxOptions{NoKeepAlive: true, WriteTimeout: s.cfg.WriteTimeout, MaxStreams: s.cfg.MaxStreams})
	if err != nil {
		log.Error("yamux setup failed", "err", err)
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		m.Close()
		return nil
	}
	c.mux = m
	c.mu.Unlock()
	log.Info("connection authenticated", "agent", agent)
	return m
}

// serveMux accepts the streams of an authenticated connection until it
// closes, then detaches its session.
func (c *conn) serveMux(mux *yamux.Session) {
	s := c.srv
	log := s.log.With("peer", c.peer)
	defer c.raw.Close()

	streams := make(chan struct{}, s.cfg.MaxStreams)
	var wg sync.WaitGroup
	for {
		st, err := mux.AcceptStream()
		if err != nil {
			break
		}
		select {
		case streams <- struct{}{}:
		default:
			log.Warn("stream refused: too many concurrent streams", "max_streams", s.cfg.MaxStreams)
			go func() {
				_ = st.SetDeadline(time.Now().Add(2 * time.Second))
				_ = transport.WriteMsg(st, errMsg(0, transport.KindLimit, fmt.Sprintf("too many concurrent requests on this connection (limit %d)", s.cfg.MaxStreams)), 0)
				st.Close()
			}()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-streams }()
			c.serveStream(st)
		}()
	}
	mux.Close()
	wg.Wait()
	sid := ""
	if h := c.attached(); h != nil {
		sid = h.id
		s.reg.detach(h)
	}
	log.Info("connection closed", "session", shortID(sid))
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
func (c *conn) serveStream(st *yamux.Stream) {
	defer st.Close()
	r := bufio.NewReaderSize(st, 1<<10) // small: an idle connection keeps it; big frames bypass it
	m, err := transport.ReadMsg(r, c.srv.cfg.MaxFrame)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.protocolError(st, err)
		}
		return
	}
	if m.T == transport.TAttach {
		c.serveEval(st, r, m)
		return
	}
	c.serveErrand(st, r, m)
}

// protocolError answers a malformed frame and logs it.
func (c *conn) protocolError(st *yamux.Stream, err error) {
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
		if errors.As(err, &ne) || errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrConnectionReset) || errors.Is(err, yamux.ErrSessionShutdown) {
			return
		}
	}
	n := c.badFrames.Add(1)
	if n > maxBadFrames {
		if n == maxBadFrames+1 {
			c.srv.log.Warn("closing the connection: too many malformed frames", "peer", c.peer, "count", n)
			_ = transport.WriteMsg(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("%s; that is %d malformed frames on this connection, which the server now closes", msg, n)), 0)
			c.close()
		}
		return
	}
	c.srv.log.Warn("bad frame from client", "peer", c.peer, "err", err)
	_ = transport.WriteMsg(st, errMsg(0, transport.KindProtocol, msg), 0)
}

// maxBadFrames is how many malformed frames a connection may send before
// the server closes it: a client that sends one has a bug, one that keeps
// sending them costs the server for nothing.
const maxBadFrames = 16

// write sends a frame; a write timeout closes the whole connection so that
// the peer does not hang on a half-written frame (yamux GO-2025-3408).
func (c *conn) write(st *yamux.Stream, m *transport.Msg) error {
	err := transport.WriteMsg(st, m, 0)
	if errors.Is(err, yamux.ErrConnectionWriteTimeout) {
		c.srv.log.Warn("write timed out; closing the connection", "peer", c.peer)
		c.close()
	}
	return err
}
