package mux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestOpenAcceptRoundTrip(t *testing.T) {
	for _, k := range transports {
		t.Run(string(k), func(t *testing.T) {
			c, s := pair(t, k, Config{}, Config{})

			cst, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cst.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			sst := recv(t, async(func() *Stream { st, _ := s.Accept(); return st }), "Accept")
			if sst == nil {
				t.Fatal("Accept failed")
			}
			if cst.ID() != sst.ID() || cst.ID()%2 != 1 {
				t.Fatalf("client stream %d, server sees %d: want the same odd ID", cst.ID(), sst.ID())
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(sst, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("server read %q, %v", buf, err)
			}
			if _, err := sst.Write([]byte("world")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(cst, buf); err != nil || string(buf) != "world" {
				t.Fatalf("client read %q, %v", buf, err)
			}

			// The server opens one too: an even ID, accepted by the client.
			sst2, err := s.Open()
			if err != nil {
				t.Fatal(err)
			}
			if sst2.ID()%2 != 0 {
				t.Fatalf("server-opened stream has ID %d, want even", sst2.ID())
			}
			if _, err := sst2.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			cst2 := recv(t, async(func() *Stream { st, _ := c.Accept(); return st }), "client Accept")
			if cst2 == nil || cst2.ID() != sst2.ID() {
				t.Fatalf("client accepted %v, want stream %d", cst2, sst2.ID())
			}
			if c.NumStreams() != 2 || s.NumStreams() != 2 {
				t.Fatalf("NumStreams: client %d, server %d; want 2 and 2", c.NumStreams(), s.NumStreams())
			}
		})
	}
}

var echoSizes = []int{0, 1, 11, 4095, maxPayload - 1, maxPayload, maxPayload + 1, initialWindow, initialWindow + 1, 1<<20 + 7, 3 << 20}

// TestEchoSizes sends payloads of many sizes, from 0 to 3 MiB, through an
// echo on the other side, on streams opened by either side.
func TestEchoSizes(t *testing.T) {
	for _, k := range transports {
		t.Run(string(k), func(t *testing.T) {
			c, s := pair(t, k, Config{}, Config{})
			acceptAll(t, s, echo)
			acceptAll(t, c, echo)
			for _, opener := range []*Session{c, s} {
				for i, n := range echoSizes {
					name := "client-opened"
					if opener == s {
						name = "server-opened"
					}
					t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
						want := pattern(byte(i), n)
						got := roundTrip(t, opener, want)
						mustEqual(t, "echo", got, want)
					})
				}
			}
		})
	}
}

// roundTrip opens a stream on s, writes p and closes its side while reading
// what comes back until io.EOF.
func roundTrip(t testing.TB, s *Session, p []byte) []byte {
	t.Helper()
	st, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	werr := async(func() error {
		if n, err := st.Write(p); err != nil || n != len(p) {
			return fmt.Errorf("Write: %d of %d bytes, %v", n, len(p), err)
		}
		return st.Close()
	})
	res := recv(t, async(func() readResult { b, err := io.ReadAll(st); return readResult{b, err} }), "ReadAll")
	if res.err != nil {
		t.Fatalf("ReadAll: %v", res.err)
	}
	if err := recv(t, werr, "Write"); err != nil {
		t.Fatal(err)
	}
	return res.b
}

// TestHalfClose: after one side closes, the other reads io.EOF and may
// still write, more than a window's worth, to the side that closed.
func TestHalfClose(t *testing.T) {
	c, s := pair(t, overTLS, Config{}, Config{})
	cst, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cst.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cst.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cst.Write([]byte("more")); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Write after Close: %v, want ErrStreamClosed", err)
	}
	if err := cst.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	sst, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(sst)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want \"request\" then io.EOF", got, err)
	}
	if n, err := sst.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF: %d, %v; want 0, io.EOF", n, err)
	}

	// The other direction is still open: 3 MiB needs window updates from
	// the side that closed.
	want := pattern(7, 3<<20)
	werr := async(func() error {
		if _, err := sst.Write(want); err != nil {
			return err
		}
		return sst.Close()
	})
	reply, err := io.ReadAll(cst)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "reply after half-close", reply, want)
	if err := recv(t, werr, "server Write"); err != nil {
		t.Fatal(err)
	}
	// Closed on both sides: both sessions forget the stream.
	if n := c.NumStreams(); n != 0 {
		t.Fatalf("client NumStreams = %d after both sides closed, want 0", n)
	}
}

// TestManyConcurrentStreams: 100 goroutines, each echoing its own pattern
// on its own stream at once.
func TestManyConcurrentStreams(t *testing.T) {
	c, s := pair(t, overTLS, Config{}, Config{})
	acceptAll(t, s, echo)
	const streams, size = 100, 40 << 10
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(byte(i), size+i)
			st, err := c.Open()
			if err != nil {
				errs <- err
				return
			}
			go func() {
				if _, err := st.Write(want); err != nil {
					errs <- err
				}
				st.Close()
			}()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", st.ID(), err)
				return
			}
			if string(got) != string(want) {
				errs <- fmt.Errorf("stream %d: echo of %d bytes came back as %d different bytes", st.ID(), len(want), len(got))
			}
		}()
	}
	done := async(func() struct{} { wg.Wait(); return struct{}{} })
	recv(t, done, "100 echoes")
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.NumStreams(); n != 0 {
		t.Errorf("client NumStreams = %d after every stream closed on both sides, want 0", n)
	}
}

// TestConcurrentWritesDoNotInterleave: two goroutines each write 100 KiB
// blocks (bigger than a frame, and together bigger than the window) on one
// stream; the reader must see each block whole.
func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	c, s := pair(t, overTCP, Config{}, Config{Window: initialWindow})
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	const block, rounds = 100 << 10, 8
	blocks := [2][]byte{make([]byte, block), make([]byte, block)}
	for i := range block {
		blocks[0][i], blocks[1][i] = 'A', 'B'
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if n, err := st.Write(blocks[w]); err != nil || n != block {
					errs <- fmt.Errorf("Write: %d, %v", n, err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); st.Close() }()

	sst, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got := recv(t, async(func() readResult { b, err := io.ReadAll(sst); return readResult{b, err} }), "ReadAll")
	if got.err != nil {
		t.Fatal(got.err)
	}
	if len(got.b) != 2*rounds*block {
		t.Fatalf("read %d bytes, want %d", len(got.b), 2*rounds*block)
	}
	counts := map[byte]int{}
	for off := 0; off < len(got.b); off += block {
		b := got.b[off : off+block]
		for i := range b {
			if b[i] != b[0] {
				t.Fatalf("block at offset %d mixes writes: %q at +0, %q at +%d", off, b[0], b[i], i)
			}
		}
		counts[b[0]]++
	}
	if counts['A'] != rounds || counts['B'] != rounds {
		t.Fatalf("blocks: %v, want %d of each", counts, rounds)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestReadDeadline(t *testing.T) {
	c, s := pair(t, overTLS, Config{}, Config{})
	cst, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cst.Write([]byte("a")); err != nil {
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

	t.Run("expires", func(t *testing.T) {
		const d = 50 * time.Millisecond
		start := time.Now()
		if err := sst.SetReadDeadline(start.Add(d)); err != nil {
			t.Fatal(err)
		}
		res := recv(t, async(func() ioResult { n, err := sst.Read(one); return ioResult{n, err} }), "Read with deadline")
		if res.n != 0 || !isTimeoutErr(res.err) || !errors.Is(res.err, ErrTimeout) {
			t.Fatalf("Read past deadline: %d, %v; want 0 and a net.Error with Timeout()", res.n, res.err)
		}
		if el := time.Since(start); el < d {
			t.Fatalf("Read returned after %v, before its %v deadline", el, d)
		}
		// The stream still works: data that arrives later is read.
		if _, err := cst.Write([]byte("b")); err != nil {
			t.Fatal(err)
		}
		sst.SetReadDeadline(time.Time{})
		if _, err := io.ReadFull(sst, one); err != nil || one[0] != 'b' {
			t.Fatalf("Read after a timeout: %q, %v", one, err)
		}
	})

	t.Run("wakes a blocked Read", func(t *testing.T) {
		started := make(chan struct{})
		res := async(func() ioResult {
			close(started)
			n, err := sst.Read(one) // no deadline yet: blocks
			return ioResult{n, err}
		})
		<-started
		if err := sst.SetReadDeadline(time.Now()); err != nil {
			t.Fatal(err)
		}
		r := recv(t, res, "blocked Read after SetReadDeadline")
		if !isTimeoutErr(r.err) {
			t.Fatalf("blocked Read: %d, %v; want a timeout", r.n, r.err)
		}
	})

	t.Run("cleared", func(t *testing.T) {
		// A deadline in the past, then cleared: a Read must wait for data
		// instead of timing out at once.
		sst.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := sst.Read(one); !isTimeoutErr(err) {
			t.Fatalf("Read past deadline: %v, want a timeout", err)
		}
		sst.SetReadDeadline(time.Time{})
		res := async(func() ioResult { n, err := sst.Read(one); return ioResult{n, err} })
		if _, err := cst.Write([]byte("c")); err != nil {
			t.Fatal(err)
		}
		r := recv(t, res, "Read after clearing the deadline")
		if r.err != nil || r.n != 1 || one[0] != 'c' {
			t.Fatalf("Read after clearing the deadline: %d %q, %v; want \"c\"", r.n, one[:r.n], r.err)
		}
	})

	t.Run("SetDeadline sets both", func(t *testing.T) {
		sst.SetDeadline(time.Now().Add(-time.Second))
		if _, err := sst.Read(one); !isTimeoutErr(err) {
			t.Fatalf("Read: %v, want a timeout", err)
		}
		sst.SetDeadline(time.Time{})
		var ne net.Error
		if !errors.As(ErrTimeout, &ne) || !ne.Timeout() {
			t.Fatal("ErrTimeout is not a net.Error with Timeout()")
		}
	})
}
