package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// TestFlowControl: a writer of 4 MiB to a reader that does not read stops
// exactly when the reader's window is full (seen as its write deadline
// passing, not by guessing with sleeps), resumes by as much as the reader
// gives back, and every byte arrives in order.
func TestFlowControl(t *testing.T) {
	for _, k := range transports {
		t.Run(string(k), func(t *testing.T) {
			const window = 512 << 10
			const total = 4 << 20
			c, s := pair(t, k, Config{}, Config{Window: window})
			cst, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cst.Write([]byte{'!'}); err != nil {
				t.Fatal(err)
			}
			sst, err := s.Accept()
			if err != nil {
				t.Fatal(err)
			}
			one := make([]byte, 1)
			if _, err := io.ReadFull(sst, one); err != nil {
				t.Fatal(err)
			}
			// The server's ACK (and its window) went before this byte, so the
			// client knows the full window once it has read it.
			if _, err := sst.Write([]byte{'!'}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(cst, one); err != nil {
				t.Fatal(err)
			}

			data := pattern(3, total)
			off := 0
			// writeUntilBlocked writes from off with a deadline d away until
			// the Write times out: the window is then exhausted. d bounds how
			// long a window update may take to come.
			writeUntilBlocked := func(d time.Duration) int {
				t.Helper()
				cst.SetWriteDeadline(time.Now().Add(d))
				n, err := cst.Write(data[off:])
				if !errors.Is(err, ErrTimeout) || !isTimeoutErr(err) {
					t.Fatalf("Write into a full window: %d bytes, %v; want ErrTimeout", n, err)
				}
				off += n
				return n
			}

			// The '!' already used a byte of the window.
			if n := writeUntilBlocked(100 * time.Millisecond); n != window-1 {
				t.Fatalf("wrote %d bytes before blocking, want the window minus one: %d", n, window-1)
			}
			// Still blocked: nothing was read.
			if n := writeUntilBlocked(20 * time.Millisecond); n != 0 {
				t.Fatalf("wrote %d more bytes with nothing read, want 0", n)
			}
			if c.IsClosed() || s.IsClosed() {
				t.Fatal("a write deadline closed the session")
			}

			// Reading half the window gives back all that was read (the
			// '!' too) in one update.
			got := make([]byte, 0, total)
			buf := make([]byte, window/2)
			if _, err := io.ReadFull(sst, buf); err != nil {
				t.Fatal(err)
			}
			got = append(got, buf...)
			if n := writeUntilBlocked(500 * time.Millisecond); n != window/2+1 {
				t.Fatalf("after %d bytes were read the writer sent %d more, want %d", window/2+1, n, window/2+1)
			}

			// Now without a deadline: the writer finishes as the reader reads.
			cst.SetWriteDeadline(time.Time{})
			werr := async(func() error {
				n, err := cst.Write(data[off:])
				if err == nil && n != total-off {
					err = fmt.Errorf("short write: %d of %d", n, total-off)
				}
				if err == nil {
					err = cst.Close()
				}
				return err
			})
			rest := recv(t, async(func() readResult { b, err := io.ReadAll(sst); return readResult{b, err} }), "ReadAll")
			if rest.err != nil {
				t.Fatal(rest.err)
			}
			if err := recv(t, werr, "Write"); err != nil {
				t.Fatal(err)
			}
			got = append(got, rest.b...)
			mustEqual(t, "bytes through flow control", got, data)
		})
	}
}

// TestBidirectionalBulk: both sides write 8 MiB to each other on one
// stream while reading, so each side's window updates must get out while
// its own writer keeps the connection busy. Keepalive pings on both sides
// add control frames. A lost window update deadlocks: the test fails
// instead of hanging.
func TestBidirectionalBulk(t *testing.T) {
	for _, k := range transports {
		t.Run(string(k), func(t *testing.T) {
			cfg := Config{KeepAlive: 5 * time.Millisecond, WriteTimeout: 5 * time.Second, Window: initialWindow}
			c, s := pair(t, k, cfg, cfg)
			const size = 8 << 20
			cst, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cst.Write([]byte{0}); err != nil {
				t.Fatal(err)
			}
			sst, err := s.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(sst, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i, st := range []*Stream{cst, sst} {
				want := pattern(byte(10+i), size)
				wg.Add(2)
				go func() {
					defer wg.Done()
					if _, err := st.Write(want); err != nil {
						errs <- fmt.Errorf("side %d Write: %w", i, err)
					}
				}()
				go func() {
					defer wg.Done()
					got := make([]byte, size)
					if _, err := io.ReadFull(st, got); err != nil {
						errs <- fmt.Errorf("side %d Read: %w", i, err)
						return
					}
					if string(got) != string(pattern(byte(10+1-i), size)) {
						errs <- fmt.Errorf("side %d read different bytes", i)
					}
				}()
			}
			done := async(func() struct{} { wg.Wait(); return struct{}{} })
			select {
			case <-done:
			case <-ctx.Done():
				c.Close()
				s.Close()
				<-done
				t.Fatalf("8 MiB each way did not complete within the deadline (client err %v, server err %v)", c.Err(), s.Err())
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if c.IsClosed() || s.IsClosed() {
				t.Fatalf("session ended: client %v, server %v", c.Err(), s.Err())
			}
		})
	}
}

// TestManyStreamsBidirectional: the same, on 8 streams at once, with the
// default 1 MiB windows, so the connection, not the windows, is the limit.
func TestManyStreamsBidirectional(t *testing.T) {
	c, s := pair(t, overTLS, Config{KeepAlive: 10 * time.Millisecond}, Config{KeepAlive: 10 * time.Millisecond})
	acceptAll(t, s, echo)
	const streams, size = 8, 2 << 20
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(byte(100+i), size)
			st, err := c.Open()
			if err != nil {
				errs <- err
				return
			}
			go func() { st.Write(want); st.Close() }()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- err
			} else if string(got) != string(want) {
				errs <- fmt.Errorf("stream %d: echo differs (%d bytes, want %d)", st.ID(), len(got), len(want))
			}
		}()
	}
	recv(t, async(func() struct{} { wg.Wait(); return struct{}{} }), "8 echoes of 2 MiB")
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
