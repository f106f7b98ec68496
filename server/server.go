package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
)

// Version is the rshell version the server reports.
var Version = "0.1.0"

// Config is everything a Server needs. Zero values mean the documented defaults.
type Config struct {
	Token  []byte      // nil: no auth (only allowed on loopback; cmd checks)
	TLS    *tls.Config // nil: plain TCP
	Logger *slog.Logger

	Session    session.Options
	SessionTTL time.Duration // detached sessions live this long; 0 = 24h
	// StateDir holds the durable session store; "" keeps sessions in memory only.
	StateDir string

	HandshakeTimeout time.Duration // 0 = 10s
	MaxConns         int           // 0 = 1024
	MaxSessions      int           // sessions held, attached or not; 0 = 4 × MaxConns, at least 10,000
	MaxStreams       int           // concurrent streams per connection; 0 = 64
	MaxFrame         int           // 0 = transport.DefaultMaxFrame
	MaxUpload        int64         // bytes; 0 = 1 GiB
	KeepAlive        time.Duration // a connection silent this long is pinged (and TCP keepalive probes it); 0 = 15s
	WriteTimeout     time.Duration // 0 = 10s

	MaxMemory int64 // bytes; running chunks are cancelled near it; 0 = no watchdog

	// GCHeadroom is how much the heap may grow by between collections
	// while running chunks compete for the CPU (gcpace.go); 0 = Go's
	// default pacing always.
	GCHeadroom int64

	// AllocRate is how fast, in bytes a second, the chunks of all
	// sessions may allocate while they compete for the CPU, in bursts of
	// half a second's worth; a session whose chunk went past it waits
	// (allocbudget.go). 0 = not charged.
	AllocRate int64

	MaxHandshakes int // new connections' setup steps (TLS flight, hello, attach) doing their CPU work at once, paced; 0 = 1 per CPU

	AuthFailures int           // failed handshakes per peer address per AuthWindow before refusal; 0 = 10
	AuthWindow   time.Duration // 0 = 1 minute
	// AuthRefuseDelay is how long a peer refused for failed handshakes
	// waits for that answer: its attempts are refused anyway, and at full
	// speed each would cost the server a TLS handshake. A peer address
	// whose handshakes failed more than AuthFailures times in AuthWindow
	// for another reason (garbage instead of TLS, a wrong protocol
	// version, a malformed hello, a timeout) waits as long for each
	// further answer, or close. 0 = 1s; negative = none.
	AuthRefuseDelay time.Duration

	// BadFramePause is how long a connection's reading stops after each
	// malformed frame past the fourth (the seventeenth closes it), so a
	// client that keeps sending them costs the server little. 0 = 250ms;
	// negative = none.
	BadFramePause time.Duration
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("rshell: server closed")

// Server serves rshell connections.
type Server struct {
	cfg  Config
	log  *slog.Logger
	reg  *registry
	info transport.HostInfo
	auth *authLimiter
	// badHellos counts, per peer, handshakes failed for another reason
	// than the token; past the limit each waits AuthRefuseDelay for its
	// answer.
	badHellos peerCounts

	baseCtx    context.Context // cancelled to stop every running chunk
	cancelBase func()

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup // connection goroutines
	running   sync.WaitGroup // chunks in flight
	slots     chan struct{}
	janitor   sync.Once
	cpuClose  sync.Once
	// cpuPassing: the janitor started cpu.pass (set in janitor.Do)
	cpuPassing bool
	chunks     chunkSet
	store      *store // nil without a state dir
	cpu        *cpuShare
	gc         *gcPacer // nil without Config.GCHeadroom
	gate       *handshakeGate
	activity   atomic.Uint64 // connections and chunks started (quiet.go)
	settled    atomic.Int32  // connections open for settleAge or more
	peerLog    *logLimiter   // warnings per peer (logthrottle.go)
}

// New returns a server with cfg. With a StateDir it opens the durable
// store and brings back every session in it; a store that cannot be used
// at all is an error (a corrupt one is moved aside instead).
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = transport.DefaultHandshakeTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = max(10_000, 4*cfg.MaxConns)
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 64
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = transport.DefaultMaxFrame
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.AuthFailures <= 0 {
		cfg.AuthFailures = 10
	}
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = time.Minute
	}
	if cfg.AuthRefuseDelay == 0 {
		cfg.AuthRefuseDelay = time.Second
	}
	if cfg.BadFramePause == 0 {
		cfg.BadFramePause = 250 * time.Millisecond
	}
	var gate *handshakeGate
	if cfg.TLS != nil {
		gate = newHandshakeGate(cfg.MaxHandshakes, cfg.HandshakeTimeout)
		cfg.TLS = gate.config(cfg.TLS)
	}
	cpu, err := newCPUShare(runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, fmt.Errorf("cannot make the CPU share's pipe: %w", err)
	}
	gc := newGCPacer(cfg.GCHeadroom)
	cpu.competing = gc.competing
	cpu.budget = newAllocBudget(cfg.AllocRate)
	ctx, cancelCause := context.WithCancelCause(context.Background())
	// Chunks still running when the shutdown grace ends are stopped, and
	// reported, as a shutdown.
	cancel := func() {
		cancelCause(&session.StopCause{Kind: transport.KindShutdown, What: "the server is shutting down"})
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		reg:        newRegistry(cfg.Session, cfg.SessionTTL, cfg.MaxSessions),
		auth:       newAuthLimiter(cfg.AuthFailures, cfg.AuthWindow),
		peerLog:    newLogLimiter(),
		badHellos:  peerCounts{window: cfg.AuthWindow},
		baseCtx:    ctx,
		cancelBase: cancel,
		cpu:        cpu,
		gc:         gc,
		gate:       gate,
		listeners:  map[net.Listener]struct{}{},
		conns:      map[*conn]struct{}{},
		slots:      make(chan struct{}, cfg.MaxConns),
	}
	if gate != nil {
		gate.pacing = func() bool { return s.settled.Load() > 0 }
	}
	if cfg.StateDir != "" {
		st, err := openStore(cfg.StateDir, cfg.Logger)
		if err != nil {
			cancel()
			return nil, err
		}
		s.store = st
		s.reg.store = st
		if err := s.restoreSessions(); err != nil {
			st.close()
			cancel()
			return nil, err
		}
	}
	host, _ := os.Hostname()
	s.info = transport.HostInfo{
		Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: Version,
		GoVersion: runtime.Version(), Protocol: transport.ProtocolVersion, PID: os.Getpid(),
		Sandbox: cfg.Session.Sandbox,
		Limits: map[string]int64{
			"max_conns": int64(cfg.MaxConns), "max_streams": int64(cfg.MaxStreams),
			"max_frame": int64(cfg.MaxFrame), "max_upload": cfg.MaxUpload,
			"max_steps": int64(cfg.Session.MaxSteps), "max_eval_ms": cfg.Session.MaxEvalTime.Milliseconds(),
			"session_ttl_s": int64(cfg.SessionTTL.Seconds()), "max_memory": cfg.MaxMemory,
		},
	}
	return s, nil
}

// Info is the host info the server sends to clients.
func (s *Server) Info() transport.HostInfo { return s.info }

// Sessions is the number of sessions the server holds.
func (s *Server) Sessions() int { return s.reg.count() }

// Serve accepts connections on ln until Shutdown or Close. It always
// returns a non-nil error; after Shutdown or Close, ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close() // as net/http does: a listener handed to a closed server is closed
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.janitor.Do(func() {
		s.wg.Add(4)
		s.cpuPassing = true
		go func() {
			defer s.wg.Done()
			s.cpu.pass()
		}()
		go s.expireLoop()
		go s.livenessLoop()
		go s.quietLoop()
		if s.cfg.MaxMemory > 0 {
			s.wg.Add(1)
			go s.watchMemory()
		}
		if s.gc != nil {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.gc.loop(s.baseCtx, s.cpu.calm)
			}()
		}
	})

	var delay time.Duration
	for {
		if s.gate != nil {
			s.gate.accepting(s.baseCtx)
		}
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				s.wait(delay)
				continue
			}
			return err
		}
		delay = 0
		s.startConn(c)
	}
}

// expireLoop drops detached sessions whose TTL passed, until shutdown.
func (s *Server) expireLoop() {
	defer s.wg.Done()
	every := min(s.cfg.SessionTTL/4, time.Minute)
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.reg.expire()
			s.reportHeldBack()
		case <-s.baseCtx.Done():
			return
		}
	}
}

func isTemporary(err error) bool {
	// EMFILE and friends: keep serving, the pressure passes.
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}

// Listen makes the TCP listener Serve wants: without Go's default
// keepalive settings, which the server replaces on every connection it
// accepts with its own (4 system calls per connection saved). Any listener
// works with Serve; this one costs each connection less.
func Listen(addr string) (net.Listener, error) {
	return (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", addr)
}

// chunkStarts counts a chunk in s.running, unless Shutdown has begun: the
// count must not rise from zero while Shutdown waits for it to fall there.
func (s *Server) chunkStarts() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.running.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) startConn(nc net.Conn) {
	s.busy()
	peer := nc.RemoteAddr().String()
	select {
	case s.slots <- struct{}{}:
	default:
		s.warnPeer(s.log, peer, "connection refused: at the connection limit", "peer", peer, "max_conns", s.cfg.MaxConns)
		go refuse(nc, s.cfg.TLS, transport.KindLimit, fmt.Sprintf("the server is at its limit of %d connections — try again later", s.cfg.MaxConns))
		return
	}
	c := &conn{srv: s, raw: nc, peer: peer, streams: make(chan struct{}, s.cfg.MaxStreams)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.slots
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	end := func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.slots
		s.wg.Done()
	}
	c.end = end
	go func() {
		if c.handshake() == nil {
			end()
		}
	}()
}

// refuse answers a connection the server will not serve with one error
// frame (after TLS, if any) under a short deadline, then closes it.
func refuse(nc net.Conn, cfg *tls.Config, kind, msg string) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	var w net.Conn = nc
	if cfg != nil {
		tc := tls.Server(nc, cfg)
		if tc.Handshake() != nil {
			return
		}
		w = tc
	}
	_ = transport.WriteMsg(w, &transport.Msg{T: transport.TError, Err: &transport.ErrorInfo{Kind: kind, Msg: msg}}, 0)
	lingerClose(w)
}

// lingerClose ends a refused connection so that the refusal is read: a
// client sends its hello (and its first yamux frames) without waiting, and
// closing a socket with unread data sends a reset, which makes the client's
// kernel drop the error frame before the client reads it. So: send our end
// of the stream, read what the client sent until it hangs up (briefly, and
// a bounded amount), then close.
func lingerClose(c net.Conn) {
	defer c.Close()
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c, 256<<10)
}

// Shutdown stops accepting, lets running chunks finish until ctx is done,
// then cancels them and closes every connection. Sessions stay in memory
// until the process exits.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.log.Warn("shutdown deadline passed; cancelling running chunks")
	}
	s.cancelBase()
	s.janitor.Do(func() {}) // the loops start now or never
	s.cpuClose.Do(func() { s.cpu.close(s.cpuPassing) })
	s.mu.Lock()
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	if s.store != nil {
		if cerr := s.store.close(); cerr != nil && err == nil {
			err = cerr
		}
		s.store = nil
	}
	s.mu.Unlock()
	return err
}

// Close stops the server at once, cancelling running chunks.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (s *Server) keepAlive() time.Duration {
	if s.cfg.KeepAlive > 0 {
		return s.cfg.KeepAlive
	}
	return 15 * time.Second
}
