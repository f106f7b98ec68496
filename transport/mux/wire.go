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
// The reader goroutine must never wait for wmu: if both peers' writers
// were stuck on full socket buffers and both readers waited for them, no
// one would read again. So the reader queues its control frames (window
// updates, pongs, ACKs) in ctl and writes them only if wmu is free; else
// the writer holding it sends them before it lets go (drainCtl).

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, headerSize+maxPayload); return &b }}

func (s *Session) writeFrame(h header, body []byte) error {
	out := h[:]
	var bp *[]byte
	if len(body) > 0 {
		bp = framePool.Get().(*[]byte)
		out = append(append((*bp)[:0], h[:]...), body...)
	}
	s.wmu.Lock()
	err := s.flushCtlLocked()
	if err == nil {
		err = s.writeLocked(out)
	}
	s.wmu.Unlock()
	s.drainCtl()
	if bp != nil && cap(out) == headerSize+maxPayload {
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

// sendControl queues a frame without payload and writes it if no one is
// writing; never blocks.
func (s *Session) sendControl(h header) {
	s.cmu.Lock()
	s.ctl = append(s.ctl, h)
	s.cmu.Unlock()
	s.drainCtl()
}

// drainCtl writes queued control frames while wmu is free. Whoever queues
// a frame calls it after queueing, and every writer after unlocking, so a
// frame is never left behind: either the queuer gets wmu, or the holder
// sees the frame after it lets go.
func (s *Session) drainCtl() {
	for s.hasCtl() && s.wmu.TryLock() {
		_ = s.flushCtlLocked()
		s.wmu.Unlock()
	}
}

func (s *Session) hasCtl() bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return len(s.ctl) > 0
}

func (s *Session) flushCtlLocked() error {
	s.cmu.Lock()
	ctl := s.ctl
	s.ctl = nil
	s.cmu.Unlock()
	if len(ctl) == 0 {
		return nil
	}
	b := make([]byte, 0, len(ctl)*headerSize)
	for _, h := range ctl {
		b = append(b, h[:]...)
	}
	return s.writeLocked(b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// Reading: one goroutine per session reads frames and hands their
// payloads to their streams.

func (s *Session) recvLoop() {
	var h header
	for {
		if _, err := io.ReadFull(s.r, h[:]); err != nil {
			s.closeWith(readErr(err))
			return
		}
		if err := s.handle(h); err != nil {
			s.closeWith(err)
			return
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
		s.sendControl(newHeader(typeWindowUpdate, flagACK, id, s.cfg.Window-initialWindow))
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
		if s.cfg.OnStream != nil {
			s.cfg.OnStream(st)
		} else {
			s.accept <- st // room for MaxStreams, and inbound is below that
		}
	}
	return nil
}

func (s *Session) discard(h header) error {
	if h.typ() != typeData || h.length() == 0 {
		return nil
	}
	_, err := io.CopyN(io.Discard, s.r, int64(h.length()))
	return err
}
