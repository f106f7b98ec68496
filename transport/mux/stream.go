package mux

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Stream state bits.
const (
	localFIN  = 1 << iota // we closed our side
	remoteFIN             // the peer closed its side
	reset                 // the stream is dead
)

// Stream is one bidirectional byte stream of a session. Reads and writes
// may run concurrently with each other; concurrent Writes do not
// interleave their bytes.
type Stream struct {
	s       *Session
	id      uint32
	inbound bool

	wlock chan struct{} // one Write at a time, and Close's FIN after it

	mu         sync.Mutex
	state      uint8
	chunks     [][]byte // received, unread payloads
	recvWindow uint32   // what the peer may still send
	unacked    uint32   // read but not yet given back to the peer's window
	sendWindow uint32   // what we may still send
	readDL     time.Time
	writeDL    time.Time
	readCh     chan struct{} // a receive, a state change or a new read deadline
	writeCh    chan struct{} // window growth, a state change or a new write deadline
}

func newStream(s *Session, id uint32, inbound bool) *Stream {
	return &Stream{
		s: s, id: id, inbound: inbound,
		wlock:      make(chan struct{}, 1),
		recvWindow: s.cfg.Window,
		sendWindow: initialWindow,
		readCh:     make(chan struct{}, 1),
		writeCh:    make(chan struct{}, 1),
	}
}

// ID is the stream's number on the wire.
func (st *Stream) ID() uint32 { return st.id }

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Read reads what the peer sent; io.EOF once it closed its side and
// everything is read.
func (st *Stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		st.mu.Lock()
		if len(st.chunks) > 0 {
			n := 0
			for n < len(p) && len(st.chunks) > 0 {
				c := copy(p[n:], st.chunks[0])
				n += c
				if c == len(st.chunks[0]) {
					st.chunks[0] = nil
					st.chunks = st.chunks[1:]
				} else {
					st.chunks[0] = st.chunks[0][c:]
				}
			}
			if len(st.chunks) == 0 {
				st.chunks = nil
			}
			// Give the window back once half of it is read, in one update.
			st.unacked += uint32(n)
			var grant uint32
			if st.unacked >= st.s.cfg.Window/2 && st.state&(remoteFIN|reset) == 0 {
				grant, st.unacked = st.unacked, 0
				st.recvWindow += grant
			}
			st.mu.Unlock()
			if grant > 0 {
				st.s.sendControl(newHeader(typeWindowUpdate, 0, st.id, grant))
			}
			return n, nil
		}
		state, dl := st.state, st.readDL
		st.mu.Unlock()
		switch {
		case state&remoteFIN != 0:
			return 0, io.EOF
		case state&reset != 0:
			return 0, ErrStreamReset
		case st.s.IsClosed():
			return 0, ErrSessionClosed
		}
		// About to wait for the peer: first send what the reader left
		// for a writer (the ACK of this stream among it), as the peer
		// may be waiting for it.
		st.s.flushDeferred()
		if err := st.wait(st.readCh, dl); err != nil {
			return 0, err
		}
	}
}

// Write sends p, in frames of at most 32 KiB and within the window the
// peer gives.
func (st *Stream) Write(p []byte) (int, error) {
	st.wlock <- struct{}{}
	defer func() { <-st.wlock }()
	total := 0
	for len(p) > 0 {
		st.mu.Lock()
		state, win, dl := st.state, st.sendWindow, st.writeDL
		switch {
		case state&reset != 0:
			st.mu.Unlock()
			return total, ErrStreamReset
		case state&localFIN != 0:
			st.mu.Unlock()
			return total, ErrStreamClosed
		}
		if win == 0 {
			st.mu.Unlock()
			if st.s.IsClosed() {
				return total, ErrSessionClosed
			}
			if err := st.wait(st.writeCh, dl); err != nil {
				return total, err
			}
			continue
		}
		n := min(uint32(len(p)), win, maxPayload)
		st.sendWindow -= n
		st.mu.Unlock()
		if err := st.s.writeFrame(newHeader(typeData, 0, st.id, n), p[:n]); err != nil {
			return total, err
		}
		total += int(n)
		p = p[n:]
	}
	return total, nil
}

// wait blocks until ch is signalled, the session ends or dl passes.
func (st *Stream) wait(ch chan struct{}, dl time.Time) error {
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return ErrTimeout
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
	case <-st.s.done:
	case <-timeout:
		return ErrTimeout
	}
	return nil
}

// Close closes our side: the peer reads io.EOF after what was written.
// Reading goes on until the peer closes its side.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.state&(localFIN|reset) != 0 {
		st.mu.Unlock()
		return nil
	}
	st.state |= localFIN
	both := st.state&remoteFIN != 0
	st.mu.Unlock()
	wake(st.writeCh)
	if both {
		// Free the stream's place before the FIN goes out: a peer that
		// reads the FIN may open a new stream at once.
		st.s.remove(st)
	}
	// After any Write in progress: it stops at its next frame (localFIN),
	// so no data frame follows the FIN.
	st.wlock <- struct{}{}
	err := st.s.writeFrame(newHeader(typeWindowUpdate, flagFIN, st.id, 0), nil)
	<-st.wlock
	if err != nil && st.s.IsClosed() {
		return nil // the session's end closed the stream anyway
	}
	return err
}

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	_ = st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline makes a Read waiting past t return ErrTimeout; zero
// means no deadline.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	st.readDL = t
	st.mu.Unlock()
	wake(st.readCh)
	return nil
}

// SetWriteDeadline makes a Write waiting for window past t return
// ErrTimeout. The connection's own writes are bounded by the session's
// write timeout.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	st.writeDL = t
	st.mu.Unlock()
	wake(st.writeCh)
	return nil
}

// receive reads a data frame's n bytes of payload from r (the reader
// goroutine's).
func (st *Stream) receive(r io.Reader, n uint32) error {
	st.mu.Lock()
	if n > st.recvWindow {
		st.mu.Unlock()
		return fmt.Errorf("%w: %d bytes on stream %d, beyond its window of %d", ErrProtocol, n, st.id, st.recvWindow)
	}
	st.recvWindow -= n
	st.mu.Unlock()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return readErr(err)
	}
	st.mu.Lock()
	if st.state&reset == 0 {
		st.chunks = append(st.chunks, b)
	}
	st.mu.Unlock()
	wake(st.readCh)
	return nil
}

func (st *Stream) grow(n uint32) {
	if n == 0 {
		return
	}
	st.mu.Lock()
	st.sendWindow = uint32(min(uint64(st.sendWindow)+uint64(n), 1<<31))
	st.mu.Unlock()
	wake(st.writeCh)
}

func (st *Stream) remoteClose() {
	st.mu.Lock()
	st.state |= remoteFIN
	both := st.state&localFIN != 0
	st.mu.Unlock()
	wake(st.readCh)
	if both {
		st.s.remove(st)
	}
}

func (st *Stream) remoteReset() {
	st.mu.Lock()
	st.state |= reset
	st.chunks = nil
	st.mu.Unlock()
	wake(st.readCh)
	wake(st.writeCh)
	st.s.remove(st)
}
