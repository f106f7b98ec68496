package mux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Writing. Every frame is written by the goroutine that sends it, header
// and payload in one Write (one TLS record, one syscall for small frames),
// under wmu; there is no writer goroutine to hand frames to.
//
// The reader goroutine must never write: if both peers' socket buffers
// were full and both readers waited to write, no one would read again. So
// the reader queues its control frames (window updates, pongs, ACKs, RSTs)
// in ctl; the next writer sends them ahead of its own frame, and if no
// writer comes, a short-lived flusher goroutine does (sendControl).

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, headerSize+maxPayload); return &b }}

func (s *Session) writeFrame(h header, body []byte) error {
	bp := framePool.Get().(*[]byte)
	s.wmu.Lock()
	// The control frames queued go in the same Write, ahead of the frame:
	// one TLS record and one segment, not two.
	out := append(append(s.takeCtl((*bp)[:0]), h[:]...), body...)
	err := s.writeLocked(out)
	s.wmu.Unlock()
	if cap(out) == headerSize+maxPayload {
		*bp = out[:0]
		framePool.Put(bp)
	}
	return err
}

// writeLocked writes b to the connection; a failed write ends the
// session, so that no peer waits on half a frame (yamux GO-2025-3408).
func (s *Session) writeLocked(b []byte) error {
	select {
	case <-s.done:
		return ErrSessionClosed
	default:
	}
	// Setting a deadline costs a timer update; refresh it only when less
	// than half the timeout is left, so a write gets at least half.
	if now := time.Now(); s.wdl.Sub(now) < s.cfg.WriteTimeout/2 {
		s.wdl = now.Add(s.cfg.WriteTimeout)
		_ = s.conn.SetWriteDeadline(s.wdl)
	}
	if _, err := s.conn.Write(b); err != nil {
		if isTimeout(err) {
			err = ErrWriteTimeout
		} else {
			err = fmt.Errorf("%w: write: %w", ErrSessionClosed, err)
		}
		s.closeWith(err)
		return err
	}
	return nil
}

// sendControl queues a frame without payload, for the next writer or a
// flusher goroutine started for it; it never blocks. Control frames are
// rare on the hot path (a window update per half window read, a pong per
// ping, an ACK per stream opened), so the goroutine costs little.
func (s *Session) sendControl(h header) {
	s.cmu.Lock()
	s.ctl = append(s.ctl, h)
	start := !s.flushing
	s.flushing = true
	s.cmu.Unlock()
	if start {
		go s.flushCtl()
	}
}

// flushCtl writes the queued control frames when the connection is free.
func (s *Session) flushCtl() {
	s.wmu.Lock()
	_ = s.flushCtlLocked()
	s.wmu.Unlock()
}

// deferControl queues a frame for the next writer without a flusher: for
// the ACK of a stream that OnStream takes, whose handler writes or waits
// to read soon (Stream.Read sends it before waiting: flushDeferred). A
// flusher goroutine per stream opened was a tenth of the goroutine runs a
// short connection costs the server.
func (s *Session) deferControl(h header) {
	s.cmu.Lock()
	s.ctl = append(s.ctl, h)
	s.cmu.Unlock()
}

// flushDeferred writes the queued control frames, if any, unless a
// flusher is on its way. If a writer holds the connection (a slow peer
// can keep it for up to the write timeout), a flusher goroutine waits for
// it instead, so that a read's own deadline still holds.
func (s *Session) flushDeferred() {
	s.cmu.Lock()
	if len(s.ctl) == 0 || s.flushing {
		s.cmu.Unlock()
		return
	}
	if !s.wmu.TryLock() {
		s.flushing = true
		s.cmu.Unlock()
		go s.flushCtl()
		return
	}
	s.cmu.Unlock()
	_ = s.flushCtlLocked()
	s.wmu.Unlock()
}

// flushCtlLocked writes every queued control frame in one Write.
func (s *Session) flushCtlLocked() error {
	if out := s.takeCtl(nil); len(out) > 0 {
		return s.writeLocked(out)
	}
	return nil
}

// takeCtl appends the queued control frames to b, emptying the queue; the
// caller holds wmu, so they are written in the order taken. Taking the
// queue clears flushing: frames queued after that start a new flusher
// (one already started finds the queue empty and is done).
func (s *Session) takeCtl(b []byte) []byte {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, h := range s.ctl {
		b = append(b, h[:]...)
	}
	s.ctl = nil
	s.flushing = false
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// Reading: one goroutine per session reads frames and hands their
// payloads to their streams.

func (s *Session) recvLoop() {
	s.closeWith(s.readFrames())
	// Every end of the session closes the connection, so this goroutine
	// always gets here, and OnClose costs no goroutine of its own.
	if s.cfg.OnClose != nil {
		s.cfg.OnClose(s.Err())
	}
}

// readFrames reads and handles frames until the connection or a frame
// fails, and says why.
func (s *Session) readFrames() error {
	var h header
	for {
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			return readErr(err)
		}
		if err := s.handle(h); err != nil {
			return err
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return ErrSessionClosed
	}
	return fmt.Errorf("%w: read: %w", ErrSessionClosed, err)
}

func (s *Session) handle(h header) error {
	if h.version() != protoVersion {
		return fmt.Errorf("%w: version %d in %s", ErrProtocol, h.version(), h)
	}
	switch h.typ() {
	case typeData, typeWindowUpdate:
		return s.handleStream(h)
	case typePing:
		if h.flags()&flagSYN != 0 {
			s.sendControl(newHeader(typePing, flagACK, 0, h.length()))
			return nil
		}
		s.mu.Lock()
		ch := s.pings[h.length()]
		delete(s.pings, h.length())
		s.mu.Unlock()
		if ch != nil {
			close(ch)
		}
		return nil
	case typeGoAway:
		return ErrSessionClosed
	}
	return fmt.Errorf("%w: unknown %s", ErrProtocol, h)
}

func (s *Session) handleStream(h header) error {
	id, flags, n := h.streamID(), h.flags(), h.length()
	if h.typ() == typeData && n > s.cfg.Window {
		return fmt.Errorf("%w: %s is bigger than the window", ErrProtocol, h)
	}
	s.mu.Lock()
	st := s.streams[id]
	opened := false
	if flags&flagSYN != 0 {
		if st != nil || id == 0 || (id%2 == 1) == s.client {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s opens a stream it may not", ErrProtocol, h)
		}
		if s.inbound >= s.cfg.MaxStreams {
			s.mu.Unlock()
			s.sendControl(newHeader(typeWindowUpdate, flagRST, id, 0))
			return s.discard(h)
		}
		st = newStream(s, id, true)
		s.streams[id] = st
		s.inbound++
		opened = true
	}
	s.mu.Unlock()
	if st == nil { // a stream already gone: drop what it carries
		return s.discard(h)
	}
	if opened {
		ack := newHeader(typeWindowUpdate, flagACK, id, s.cfg.Window-initialWindow)
		if s.cfg.OnStream != nil {
			s.deferControl(ack)
		} else {
			s.sendControl(ack)
		}
	}
	if h.typ() == typeWindowUpdate {
		st.grow(n)
	} else if n > 0 {
		if err := st.receive(s.r, n); err != nil {
			return err
		}
	}
	if flags&flagFIN != 0 {
		st.remoteClose()
	}
	if flags&flagRST != 0 {
		st.remoteReset()
	}
	if opened {
		s.deliver(st)
	}
	return nil
}

func (s *Session) discard(h header) error {
	if h.typ() != typeData || h.length() == 0 {
		return nil
	}
	if _, err := io.CopyN(io.Discard, s.r, int64(h.length())); err != nil {
		return readErr(err)
	}
	return nil
}

// deliver hands a stream the peer opened to OnStream or the Accept queue.
// A stream reset as it opened is not delivered: it is gone already, and
// would take a place in the queue that inbound no longer counts.
func (s *Session) deliver(st *Stream) {
	st.mu.Lock()
	dead := st.state&reset != 0
	st.mu.Unlock()
	switch {
	case dead:
	case s.cfg.OnStream != nil:
		s.cfg.OnStream(st)
	default:
		select {
		case s.accept <- st:
		default: // full of streams reset while queued: refuse this one
			s.remove(st)
			s.sendControl(newHeader(typeWindowUpdate, flagRST, st.id, 0))
		}
	}
}
