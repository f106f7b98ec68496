package mux

import (
	"io"
	"net"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// goroutinesCreated is how many goroutines the process has started so far.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestShortStreamCostsOnlyItsHandler: on a session with OnStream, a
// request on a new stream, its answer and the end of the connection start
// no goroutine but the handler OnStream starts. The ACK of the new stream
// goes out with the handler's answer (a flusher goroutine per stream used
// to send it), and OnClose runs on the ending reader (it had a goroutine
// of its own). A connection storm's server paid both per connection.
//
// Other tests' timers may start a goroutine meanwhile, so a count that is
// off gets two more tries.
func TestShortStreamCostsOnlyItsHandler(t *testing.T) {
	var opened, closed uint64
	for range 3 {
		opened, closed = shortStreamGoroutines(t)
		if opened == 1 && closed == 0 {
			return
		}
	}
	t.Fatalf("a stream's request and answer started %d goroutines (want 1, its handler); the end of the connection %d (want 0)", opened, closed)
}

func shortStreamGoroutines(t *testing.T) (opened, closed uint64) {
	handled := make(chan struct{}, 1)
	onClose := make(chan error, 1)
	scfg := Config{
		OnStream: func(st *Stream) {
			go func() {
				defer func() { handled <- struct{}{} }()
				defer st.Close()
				b := make([]byte, 16)
				if _, err := io.ReadFull(st, b); err != nil {
					return
				}
				_, _ = st.Write(b)
			}()
		},
		OnClose: func(err error) { onClose <- err },
	}
	c, s := pair(t, overTCP, Config{}, scfg)

	before := goroutinesCreated()
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(7, 16)
	if _, err := st.Write(want); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "answer", got, want)
	recv(t, handled, "the handler's end")
	st.Close()
	opened = goroutinesCreated() - before

	before = goroutinesCreated()
	c.Close()
	waitClosed(t, s)
	recv(t, onClose, "OnClose")
	closed = goroutinesCreated() - before
	return opened, closed
}

// TestStreamAckedWhenItsHandlerWaitsToRead: the ACK of a stream OnStream
// takes carries the rest of the server's window. A handler that reads a
// whole upload before it writes anything gets it all: the ACK goes out
// when the handler first waits to read, not only with its first write
// (the client could otherwise send only the initial 256 KiB, and the
// handler would wait for the rest, neither side moving).
func TestStreamAckedWhenItsHandlerWaitsToRead(t *testing.T) {
	const size = 1 << 20
	got := make(chan int, 1)
	scfg := Config{
		Window: 4 * initialWindow,
		OnStream: func(st *Stream) {
			go func() {
				defer st.Close()
				b, _ := io.ReadAll(st)
				got <- len(b)
			}()
		},
	}
	c, _ := pair(t, overTCP, Config{}, scfg)
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetWriteDeadline(time.Now().Add(failSafe)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(pattern(3, size)); err != nil {
		t.Fatalf("writing %d bytes before the handler writes anything: %v", size, err)
	}
	if err := st.Close(); err != nil { // our side: the handler reads EOF
		t.Fatal(err)
	}
	if n := recv(t, got, "the handler's read"); n != size {
		t.Fatalf("the handler read %d bytes of %d", n, size)
	}
}

// writeCounter counts the Writes to a connection.
type writeCounter struct {
	net.Conn
	n atomic.Int64
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.n.Add(1)
	return w.Conn.Write(p)
}

// TestAckRidesWithTheAnswer: the ACK of a stream OnStream takes, queued
// for the next writer, goes out in the same Write as the handler's first
// frame: one TLS record and one segment for a short request's answer, not
// two (a new connection's attach paid both).
func TestAckRidesWithTheAnswer(t *testing.T) {
	cc, sc := tcpConns(t)
	counted := &writeCounter{Conn: sc}
	done := make(chan struct{})
	s := Server(counted, Config{OnStream: func(st *Stream) {
		go func() {
			defer close(done)
			_, _ = st.Write([]byte("answer"))
			st.Close()
		}()
	}})
	c := Client(cc, Config{})
	defer c.Close()
	defer s.Close()
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "answer" {
		t.Fatalf("answer %q, %v", got, err)
	}
	recv(t, done, "the handler's end")
	// The answer and the ACK in one Write, the FIN in another.
	if n := counted.n.Load(); n != 2 {
		t.Fatalf("the server wrote %d times for an ACK, an answer and a FIN, want 2", n)
	}
}
