package mux

// Regression tests: each shows a bug the package had (found by these
// tests), in the words of the bug; they pass since its fix.

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestResetBeforeAcceptDoesNotStallReader: a stream the peer opens and
// resets before it is accepted leaves the accept queue as soon as it is
// reset... except it does not: handleStream (wire.go) counts it out of
// inbound (remoteReset -> remove) but still queues it with a blocking
// `s.accept <- st`, whose buffer is only MaxStreams. After MaxStreams such
// streams the reader goroutine blocks for good: no frame is read again,
// pings go unanswered, and even Close does not free the goroutine.
// A yamux peer sends such resets; a hostile one can stall any server that
// accepts slower than it opens.
func TestResetBeforeAcceptDoesNotStallReader(t *testing.T) {
	for name, open := range map[string]func(id uint32) []byte{
		"SYN|RST in one frame": func(id uint32) []byte {
			return frame(typeWindowUpdate, flagSYN|flagRST, id, 0, nil)
		},
		"SYN, then RST": func(id uint32) []byte {
			return append(frame(typeWindowUpdate, flagSYN, id, 0, nil), frame(typeWindowUpdate, flagRST, id, 0, nil)...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			const maxStreams = 2
			raw, s := rawClient(t, Config{MaxStreams: maxStreams})
			// Runs before rawClient's cleanup: unstick the reader (if stuck)
			// so that it can see the closed connection and exit.
			t.Cleanup(func() {
				s.Close()
				for range cap(s.accept) + 1 {
					select {
					case <-s.accept:
					default:
					}
				}
			})
			for i := range maxStreams + 1 {
				if _, err := raw.Write(open(uint32(2*i + 1))); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := raw.Write(frame(typePing, flagSYN, 0, 77, nil)); err != nil {
				t.Fatal(err)
			}
			raw.SetReadDeadline(time.Now().Add(time.Second))
			for {
				h, _, err := readFrame(raw)
				if err != nil {
					t.Fatalf("no answer to a ping after %d streams were opened and reset unaccepted (%v): the reader is stuck queueing them", maxStreams+1, err)
				}
				if h.typ() == typePing && h.length() == 77 {
					break
				}
			}
			if s.IsClosed() {
				t.Fatalf("session ended: %v", s.Err())
			}
		})
	}
}

// hookConn runs hooks around a server session's conn: see
// TestCloseFreesStreamSlotBeforeFIN.
type hookConn struct {
	net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	finWritten chan struct{} // closed after the first FIN frame is written
	release    chan struct{} // the FIN's writer waits for it
	finOnce    sync.Once

	armed      atomic.Bool // set by the test once the peer's next frame is on its way
	gotBytes   atomic.Bool // a Read returned bytes after armed
	handled    chan struct{}
	handleOnce sync.Once
}

func (h *hookConn) Write(b []byte) (int, error) {
	n, err := h.Conn.Write(b)
	if len(b) == headerSize && header(b).typ() == typeWindowUpdate && header(b).flags()&flagFIN != 0 {
		first := false
		h.finOnce.Do(func() { first = true; close(h.finWritten) })
		if first {
			select {
			case <-h.release:
			case <-h.closed:
			}
		}
	}
	return n, err
}

func (h *hookConn) Read(p []byte) (int, error) {
	if h.gotBytes.Load() {
		// The reader is back for more: it has handled what it read.
		h.handleOnce.Do(func() { close(h.handled) })
	}
	n, err := h.Conn.Read(p)
	if n > 0 && h.armed.Load() {
		h.gotBytes.Store(true)
	}
	return n, err
}

func (h *hookConn) Close() error {
	h.closeOnce.Do(func() { close(h.closed) })
	return h.Conn.Close()
}

// TestCloseFreesStreamSlotBeforeFIN: Stream.Close (stream.go, Close)
// writes the FIN and only then, if the peer had closed too, removes the
// stream, freeing its MaxStreams slot. A peer that reads io.EOF and at
// once opens a new stream can get there first and be reset, though every
// stream it had was closed on both sides. The test holds the server's
// Close right after its FIN is written (as a preemption could), lets the
// client see EOF and open a new stream, and waits until the server has
// handled that SYN. Fix: remove the stream (free the slot) before
// writing the FIN.
func TestCloseFreesStreamSlotBeforeFIN(t *testing.T) {
	cc, sc := tcpConns(t)
	hook := &hookConn{Conn: sc, closed: make(chan struct{}), finWritten: make(chan struct{}), release: make(chan struct{}), handled: make(chan struct{})}
	c := Client(cc, Config{})
	s := Server(hook, Config{MaxStreams: 1})
	t.Cleanup(func() {
		c.Close()
		s.Close()
		waitClosed(t, c)
		waitClosed(t, s)
	})
	acceptAll(t, s, echo)
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(hook.release) }) }
	t.Cleanup(unhold)

	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st.SetReadDeadline(time.Now().Add(failSafe))
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "a" {
		t.Fatalf("first stream: %q, %v", got, err)
	}
	recv(t, hook.finWritten, "server FIN")
	// Closed on both sides, as far as the client can tell: open the next.
	hook.armed.Store(true)
	st2, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	recv(t, hook.handled, "server handling the new SYN")
	unhold()

	if _, err := st2.Write([]byte("b")); err != nil && !errors.Is(err, ErrStreamReset) {
		t.Fatal(err)
	}
	st2.SetReadDeadline(time.Now().Add(failSafe))
	one := make([]byte, 1)
	if _, err := io.ReadFull(st2, one); err != nil {
		t.Fatalf("new stream, opened after the only other one was closed on both sides: %v", err)
	}
	if one[0] != 'b' {
		t.Fatalf("echo %q", one)
	}
}

// pingBarrierConn lines up two sessions' readers: each, having read a
// ping, waits until the other has read one too and its own session's
// write lock is free, as happens when both sides ping at once.
type pingBarrierConn struct {
	net.Conn
	sess    atomic.Pointer[Session]
	mine    chan struct{}
	theirs  chan struct{}
	once    sync.Once
	timeout <-chan time.Time
}

func (p *pingBarrierConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if n == headerSize && header(b).typ() == typePing && header(b).flags() == flagSYN {
		p.once.Do(func() {
			close(p.mine)
			select {
			case <-p.theirs:
			case <-p.timeout:
				return
			}
			// The ping's sender has written it; wait until it has let go
			// of the session's write lock (a bounded spin, no sleeping).
			s := p.sess.Load()
			for range 1_000_000 {
				if s.wmu.TryLock() {
					s.wmu.Unlock()
					return
				}
				runtime.Gosched()
			}
		})
	}
	return n, err
}

// TestSimultaneousPingsUnbuffered: the design (wire.go, the comment on
// Writing) says the reader goroutine never waits on writing, so that two
// peers whose writers are stuck cannot deadlock. But sendControl ->
// drainCtl lets the reader itself write a control frame (a pong, an ACK,
// an RST) to the connection whenever the write lock is free, and that
// write blocks while the peer does not read. When both sides ping at once
// over a connection with no room (a net.Pipe here; TCP with both
// directions' buffers full), both readers write their pongs and wait for
// each other: nothing moves until the write timeout ends both sessions.
// Without the barrier, 20000 rounds of simultaneous pings over net.Pipe
// hit it in a few thousand rounds when GOMAXPROCS > 1. Fix: the reader
// should never write; hand its control frames to a goroutine started on
// demand (or a short-lived flusher) when the write lock is free.
func TestSimultaneousPingsUnbuffered(t *testing.T) {
	a, b := net.Pipe()
	timeout := time.After(failSafe)
	pa := &pingBarrierConn{Conn: a, mine: make(chan struct{}), theirs: make(chan struct{}), timeout: timeout}
	pb := &pingBarrierConn{Conn: b, mine: pa.theirs, theirs: pa.mine, timeout: timeout}
	cfg := Config{WriteTimeout: 300 * time.Millisecond}
	c, s := Client(pa, cfg), Server(pb, cfg)
	pa.sess.Store(c)
	pb.sess.Store(s)
	t.Cleanup(func() {
		c.Close()
		s.Close()
		waitClosed(t, c)
		waitClosed(t, s)
	})
	r1 := async(func() error { _, err := c.Ping(); return err })
	r2 := async(func() error { _, err := s.Ping(); return err })
	e1, e2 := recv(t, r1, "client Ping"), recv(t, r2, "server Ping")
	if e1 != nil || e2 != nil {
		t.Fatalf("simultaneous pings: client %v, server %v; sessions ended with %v and %v", e1, e2, c.Err(), s.Err())
	}
}
