package mux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Config tunes a session. Zero values take the defaults.
type Config struct {
	// KeepAlive is how often to ping the peer; an unanswered ping closes
	// the session with ErrKeepAlive. 0 sends no pings (they are still
	// answered).
	KeepAlive time.Duration
	// WriteTimeout bounds each write to the connection (and a Ping's
	// wait); a write that times out closes the session. 0 = 10s.
	WriteTimeout time.Duration
	// MaxStreams is how many streams the peer may have open at once;
	// more are reset. 0 = 256.
	MaxStreams int
	// Window is each stream's receive window: how much the peer may send
	// before the reader catches up. 0 = 1 MiB; at least 256 KiB.
	Window uint32
	// ReadBuffer buffers reads from the connection: worth it on plain TCP,
	// not under TLS, which reads whole records anyway. 0 = none.
	ReadBuffer int
	// OnStream, if set, is called on the session's reader goroutine for
	// every stream the peer opens, and must not block (start a goroutine).
	// Without it, such streams wait for Accept.
	OnStream func(*Stream)
	// OnClose, if set, is called once when the session has ended, with the
	// reason (Err), on the reader goroutine as it ends: it may block, and
	// no frame is read any more.
	OnClose func(error)
}

const (
	defaultWriteTimeout = 10 * time.Second
	defaultMaxStreams   = 256
	defaultWindow       = 1 << 20
	// maxPayload caps one data frame: a big write goes out in frames of
	// this size, so other streams' frames interleave.
	maxPayload = 32 << 10
)

// Session is one connection's streams.
type Session struct {
	conn   net.Conn
	r      io.Reader
	cfg    Config
	client bool

	wmu sync.Mutex // held while writing to conn
	wdl time.Time  // the write deadline set on conn; under wmu

	cmu      sync.Mutex
	ctl      []header // control frames waiting to be written: see sendControl
	flushing bool     // a flusher goroutine is started and has not taken ctl yet

	mu      sync.Mutex
	streams map[uint32]*Stream
	nextID  uint32
	inbound int // streams the peer opened that are still open
	pings   map[uint32]chan struct{}
	pingID  uint32
	accept  chan *Stream // nil with OnStream
	err     error        // why the session ended

	done      chan struct{}
	closeOnce sync.Once
}

// Client starts the session of the side that dialled.
func Client(conn net.Conn, cfg Config) *Session { return newSession(conn, cfg, true) }

// Server starts the session of the side that accepted.
func Server(conn net.Conn, cfg Config) *Session { return newSession(conn, cfg, false) }

func newSession(conn net.Conn, cfg Config, client bool) *Session {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = defaultMaxStreams
	}
	if cfg.Window == 0 {
		cfg.Window = defaultWindow
	}
	cfg.Window = max(cfg.Window, initialWindow)
	s := &Session{conn: conn, r: conn, cfg: cfg, client: client, streams: map[uint32]*Stream{}, done: make(chan struct{})}
	if cfg.ReadBuffer > 0 {
		s.r = bufio.NewReaderSize(conn, cfg.ReadBuffer)
	}
	s.nextID = 2
	if client {
		s.nextID = 1
	}
	if cfg.OnStream == nil {
		s.accept = make(chan *Stream, min(cfg.MaxStreams, 1024))
	}
	go s.recvLoop()
	if cfg.KeepAlive > 0 {
		go s.keepAlive()
	}
	return s
}

// Open starts a new stream. It does not wait for the peer.
func (s *Session) Open() (*Stream, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, ErrSessionClosed
	}
	id := s.nextID
	if id > 1<<32-3 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: stream IDs exhausted", ErrSessionClosed)
	}
	s.nextID += 2
	st := newStream(s, id, false)
	s.streams[id] = st
	s.mu.Unlock()
	// The SYN is a window update that also grows the peer's send window
	// from the initial 256 KiB to ours.
	if err := s.writeFrame(newHeader(typeWindowUpdate, flagSYN, id, s.cfg.Window-initialWindow), nil); err != nil {
		s.remove(st)
		return nil, err
	}
	return st, nil
}

// Accept waits for a stream the peer opens (without Config.OnStream).
func (s *Session) Accept() (*Stream, error) {
	select {
	case st := <-s.accept:
		return st, nil
	case <-s.done:
		return nil, ErrSessionClosed
	}
}

// Ping sends a ping and waits, at most the write timeout, for its answer.
func (s *Session) Ping() (time.Duration, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return 0, ErrSessionClosed
	}
	s.pingID++
	id := s.pingID
	ch := make(chan struct{})
	if s.pings == nil {
		s.pings = map[uint32]chan struct{}{}
	}
	s.pings[id] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.pings, id)
		s.mu.Unlock()
	}
	start := time.Now()
	if err := s.writeFrame(newHeader(typePing, flagSYN, 0, id), nil); err != nil {
		forget()
		return 0, err
	}
	t := time.NewTimer(s.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-ch:
		return time.Since(start), nil
	case <-s.done:
		return 0, ErrSessionClosed
	case <-t.C:
		forget()
		return 0, ErrTimeout
	}
}

func (s *Session) keepAlive() {
	t := time.NewTicker(s.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if _, err := s.Ping(); err != nil {
				if errors.Is(err, ErrTimeout) {
					s.closeWith(ErrKeepAlive)
				}
				return
			}
		case <-s.done:
			return
		}
	}
}

// Close ends the session and its streams and closes the connection.
func (s *Session) Close() error {
	s.closeWith(ErrSessionClosed)
	return nil
}

// CloseChan is closed when the session has ended.
func (s *Session) CloseChan() <-chan struct{} { return s.done }

// IsClosed reports whether the session has ended.
func (s *Session) IsClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Err says why the session ended: ErrSessionClosed after Close or when the
// peer closed the connection, ErrKeepAlive, ErrWriteTimeout, a read error
// or a protocol error. nil while it is open.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// NumStreams is how many streams are open.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

func (s *Session) closeWith(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
		// Close the bottom connection first: closing a TLS connection
		// otherwise sends a close_notify alert with a deadline of its own
		// (5 s), which a peer that reads nothing (the usual reason for
		// ending) would make us wait for. The frames already say where
		// every stream ends, so the alert adds nothing.
		rawConn(s.conn).Close()
		s.conn.Close()
		// OnClose runs on the reader goroutine as it ends (recvLoop),
		// which the closed connection ends at once.
	})
}

func (s *Session) remove(st *Stream) {
	s.mu.Lock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
		if st.inbound {
			s.inbound--
		}
	}
	s.mu.Unlock()
}

// rawConn unwraps c down to the connection under TLS and any wrappers that
// say what they wrap (NetConn, as *tls.Conn has).
func rawConn(c net.Conn) net.Conn {
	for range 8 {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	return c
}
