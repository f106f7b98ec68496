package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
)

// running is the chunk in flight on one eval stream.
type running struct {
	mu       sync.Mutex
	seq      uint64
	cancel   context.CancelCauseFunc
	deadline time.Duration // the chunk's deadline, as the client asked
}

func (r *running) set(seq uint64, cancel context.CancelCauseFunc, deadline time.Duration) {
	r.mu.Lock()
	r.seq, r.cancel, r.deadline = seq, cancel, deadline
	r.mu.Unlock()
}

// deadlineCause reports a chunk stopped by its client's deadline.
func deadlineCause(d time.Duration) *session.StopCause {
	what := "deadline exceeded"
	if d > 0 {
		what = fmt.Sprintf("deadline exceeded after %s", d)
	}
	return &session.StopCause{Kind: transport.KindDeadline, What: what}
}

// cancelSeq stops the running chunk if it is seq (0: whichever runs);
// clientDeadline reports it as the client's deadline, else cause is used
// (nil: a plain cancel).
func (r *running) cancelSeq(seq uint64, cause error, clientDeadline bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil && (seq == 0 || seq == r.seq) {
		if clientDeadline {
			cause = deadlineCause(r.deadline)
		}
		r.cancel(cause)
	}
}

// serveEval attaches the connection to a session, then serves its chunks:
// this goroutine reads frames (so that a cancel is seen while a chunk
// runs) and one long-lived runner goroutine evaluates them in order.
func (c *conn) serveEval(st *mux.Stream, r io.Reader, m *transport.Msg) {
	s := c.srv
	if c.attached() != nil {
		_ = c.write(st, errMsg(0, transport.KindProtocol, "this connection is already attached to a session"))
		return
	}
	// A new connection's attach takes a turn on the handshake gate of
	// its own (the reader's turn ends when it reads again), and its
	// answer ends the connection's setup (setupConn).
	endSetup := c.setup.attachTurn()
	h, resumed, ei := s.reg.attach(m)
	if ei != nil {
		s.warnPeer(s.log, c.peer, "attach refused", "peer", c.peer, "session", shortID(m.Session), "err", ei.Msg)
		_ = c.write(st, &transport.Msg{T: transport.TError, Err: ei})
		endSetup()
		return
	}
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
	err := c.write(st, &transport.Msg{T: transport.TAttached, Session: h.id, Secret: h.secret, NS: h.ns, Resumed: resumed, Last: h.lastChunk(), NotRestored: h.takeNotRestored()})
	endSetup()
	// Logged after the answer, which need not wait for it.
	s.log.Info("session attached", "peer", c.peer, "session", shortID(h.id), "resumed", resumed, "ns", h.ns)
	if err != nil {
		return
	}

	e := &evalStream{c: c, st: st, r: r, h: h, run: &running{}, reqs: make(chan *transport.Msg, 1)}
	e.charged = e.paused
	e.serve()
}

// evalStream serves one attached eval stream. Chunks run inline, on the
// goroutine that reads the stream, so a short chunk's round trip costs no
// hand-off between goroutines (measured: eval_rtt 95 → 76 µs, split
// placement). A chunk that turns out not to be short (session.WithLongChunk:
// many steps, or about to block) switches the stream for good: a new
// goroutine takes over reading, so a cancel is seen at once, and this one
// becomes the runner, fed chunks in order through reqs.
type evalStream struct {
	c    *conn
	st   *mux.Stream
	r    io.Reader
	h    *hosted
	run  *running
	reqs chan *transport.Msg

	charged    func(uint64, time.Duration) // e.paused, made once
	split      bool                        // a reader goroutine took over (touched only by the evaluating goroutine)
	readerDone chan struct{}               // closed when that reader returns
}

func (e *evalStream) serve() {
	if !e.read(true) {
		return
	}
	// This goroutine is now the runner: the reader closes reqs when the
	// stream ends; a running chunk finishes on its own and its outcome is
	// kept for a resuming client, never re-run.
	for req := range e.reqs {
		e.c.runChunk(e, req)
	}
	<-e.readerDone
}

// read reads frames until the stream ends (false) or, inline, until a
// chunk it ran switched the stream (true: the caller is now the runner).
func (e *evalStream) read(inline bool) (becameRunner bool) {
	c := e.c
	for {
		m, err := transport.ReadMsg(e.r, c.srv.cfg.MaxFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.protocolError(e.st, err)
			}
			if !inline {
				close(e.reqs)
			}
			return false
		}
		switch m.T {
		case transport.TEval:
			if inline {
				c.runChunk(e, m)
				if e.split {
					return true
				}
				continue
			}
			select {
			case e.reqs <- m:
			default:
				_ = c.write(e.st, errMsg(m.Seq, transport.KindProtocol, "a chunk is already running on this session; wait for its result or cancel it"))
			}
		case transport.TCancel:
			e.run.cancelSeq(m.Seq, nil, m.Text == "deadline")
		default:
			_ = c.write(e.st, errMsg(m.Seq, transport.KindProtocol, fmt.Sprintf("unknown request %q on the eval stream", m.T)))
		}
	}
}

// long is the session's hook for a chunk that is not short: it makes sure
// a cancel can be read while the chunk runs.
func (e *evalStream) long() {
	if !e.split {
		e.split = true
		e.readerDone = make(chan struct{})
		go func() {
			defer close(e.readerDone)
			e.read(false)
		}()
	}
}

// paused logs that the session's chunks wait for what one allocated while
// chunks competed for the CPU (allocbudget.go).
func (e *evalStream) paused(bytes uint64, wait time.Duration) {
	c := e.c
	c.srv.warnPeer(c.srv.log, c.peer, "chunk paused: it allocated more than the server's budget while chunks compete for the CPU",
		"peer", c.peer, "session", shortID(e.h.id), "MiB", bytes>>20, "wait", wait.Round(time.Millisecond))
}

func (c *conn) runChunk(e *evalStream, req *transport.Msg) {
	s, st, h, run := c.srv, e.st, e.h, e.run
	if !s.chunkStarts() {
		_ = c.write(st, &transport.Msg{T: transport.TError, Seq: req.Seq, Err: &transport.ErrorInfo{
			Kind: transport.KindShutdown, Msg: "the server is shutting down; the chunk did not run — reconnect when it is back"}})
		return
	}
	defer s.running.Done()
	s.busy()
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	d := time.Duration(req.DeadlineMS) * time.Millisecond
	var stopTimer func() bool
	if d > 0 {
		t := time.AfterFunc(d, func() { cancel(deadlineCause(d)) })
		stopTimer = t.Stop
	}
	run.set(req.Seq, cancel, d)
	s.chunks.add(run)
	defer s.chunks.remove(run)
	h.setLast(transport.LastChunk{Seq: req.Seq, State: "running"})

	out := func(text string) {
		_ = c.write(st, &transport.Msg{T: transport.TOut, Seq: req.Seq, Text: text})
	}
	tn := s.cpu.turn(&h.cost)
	tn.charged = e.charged
	val, ei := h.session().Eval(session.WithCPU(session.WithLongChunk(ctx, e.long), tn), req.Src, req.File, out)
	tn.done()

	if stopTimer != nil {
		stopTimer()
	}
	run.set(0, nil, 0)
	cancel(nil)
	if ei != nil {
		state := "failed"
		if ei.Kind == transport.KindCancelled || ei.Kind == transport.KindDeadline || ei.Kind == transport.KindShutdown {
			state = "cancelled"
		}
		h.setLast(transport.LastChunk{Seq: req.Seq, State: state, Err: ei})
		s.persist(h) // a failed chunk may have changed the namespace before failing
		// The answer first, then the log line: formatting the traceback and
		// writing it out took 0.1-0.25 ms (measured, the first 10 a minute per
		// peer; the rest are dropped by the log limit), which a cancel waited for.
		_ = c.write(st, &transport.Msg{T: transport.TError, Seq: req.Seq, Err: ei})
		s.logRemoteError(c.peer, h, req, ei)
		return
	}
	h.setLast(transport.LastChunk{Seq: req.Seq, State: "done", Value: val})
	warn := s.persist(h)
	if p := pauseNotice(tn.paused); p != "" {
		warn = strings.TrimPrefix(warn+"; "+p, "; ")
	}
	_ = c.write(st, &transport.Msg{T: transport.TResult, Seq: req.Seq, Value: val, Warn: warn})
}

func (s *Server) logRemoteError(peer string, h *hosted, req *transport.Msg, ei *transport.ErrorInfo) {
	s.warnPeer(s.log, peer, "remote error", "peer", peer, "session", shortID(h.id), "kind", ei.Kind,
		"traceback", traceback{ei})
}

// traceback is an error's traceback for the log, formatted only when logged.
type traceback struct{ ei *transport.ErrorInfo }

func (t traceback) LogValue() slog.Value {
	re := &transport.RemoteError{Info: *t.ei}
	return slog.StringValue(re.Traceback())
}
