package mux

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// FuzzSessionFrames feeds arbitrary bytes to a server session as its
// peer's frames, over net.Pipe (so every byte is read as written). The
// session must not panic, and must end once the input is closed. The
// first byte picks how the server takes streams: 0 Accept (reading and
// closing them), 1 OnStream (the same), 2 not at all.
func FuzzSessionFrames(f *testing.F) {
	cat := func(frames ...[]byte) []byte {
		var b []byte
		for _, fr := range frames {
			b = append(b, fr...)
		}
		return b
	}
	open := frame(typeWindowUpdate, flagSYN, 1, 0, nil)
	for mode := range byte(3) {
		f.Add(append([]byte{mode}, cat(
			open,
			frame(typeData, 0, 1, 5, []byte("hello")),
			frame(typeWindowUpdate, 0, 1, 1<<20, nil),
			frame(typeData, flagFIN, 1, 3, []byte("bye")),
		)...))
		f.Add(append([]byte{mode}, cat(
			frame(typeData, flagSYN, 3, 2, []byte("hi")),
			frame(typePing, flagSYN, 0, 9, nil),
			frame(typePing, flagACK, 0, 9, nil),
			frame(typeWindowUpdate, flagRST, 3, 0, nil),
			frame(typeGoAway, 0, 0, 0, nil),
		)...))
	}
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})         // data beyond the window
	f.Add(append([]byte{1}, frame(typeWindowUpdate, flagSYN, 2, 0, nil)...)) // wrong parity
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})              // garbage
	f.Add([]byte{2, 0, 0, 0, 1})                                             // a cut header
	f.Add(append([]byte{0}, cat(open, frame(typeData, 0, 1, 10, []byte("short")))...))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, input := data[0]%3, data[1:]
		peer, conn := net.Pipe()
		// The goroutines started for streams; OnStream may still start
		// one while the session ends, so no WaitGroup.
		var mu sync.Mutex
		var running []<-chan struct{}
		start := func(f func()) {
			done := make(chan struct{})
			mu.Lock()
			running = append(running, done)
			mu.Unlock()
			go func() { defer close(done); f() }()
		}
		handle := func(st *Stream) {
			start(func() {
				_, _ = io.Copy(io.Discard, st)
				_ = st.Close()
			})
		}
		cfg := Config{MaxStreams: 4, Window: initialWindow, WriteTimeout: time.Second}
		if mode == 1 {
			cfg.OnStream = handle
		}
		s := Server(conn, cfg)
		if mode == 0 {
			start(func() {
				for {
					st, err := s.Accept()
					if err != nil {
						return
					}
					handle(st)
				}
			})
		}
		// Whatever the session writes is read and dropped.
		drained := async(func() error { _, err := io.Copy(io.Discard, peer); return err })
		written := make(chan struct{})
		go func() { defer close(written); _, _ = peer.Write(input) }()
		select {
		case <-written:
		case <-s.CloseChan():
		case <-time.After(2 * time.Second):
			t.Errorf("the session read no more of the input for 2s")
		}
		peer.Close()
		select {
		case <-s.CloseChan():
		case <-time.After(2 * time.Second):
			t.Errorf("session still open 2s after its peer closed")
		}
		s.Close()
		if mode == 2 {
			// Nobody accepts: free a reader stuck on a full queue (see
			// TestResetBeforeAcceptDoesNotStallReader) so it can exit.
			for range cap(s.accept) + 1 {
				select {
				case <-s.accept:
				default:
				}
			}
		}
		<-written
		<-drained
		for i := 0; ; i++ {
			mu.Lock()
			all := running
			mu.Unlock()
			for _, done := range all {
				recv(t, done, "stream goroutine")
			}
			mu.Lock()
			more := len(running) > len(all)
			mu.Unlock()
			if !more || i > 100 {
				break
			}
		}
		if s.Err() == nil {
			t.Error("closed session without a reason")
		}
	})
}
