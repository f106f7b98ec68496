package mux

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// TestMaxStreams: with MaxStreams 2 and two streams open, the server
// resets the third; once a stream is closed on both sides, a new one gets
// its place.
func TestMaxStreams(t *testing.T) {
	c, s := pair(t, overTLS, Config{}, Config{MaxStreams: 2})
	one := make([]byte, 1)
	var cst [3]*Stream
	for i := range cst {
		st, err := c.Open()
		if err != nil {
			t.Fatal(err)
		}
		// The third stream's reset may already be back.
		if _, err := st.Write([]byte{byte('a' + i)}); err != nil && !(i == 2 && errors.Is(err, ErrStreamReset)) {
			t.Fatal(err)
		}
		cst[i] = st
	}
	var sst [2]*Stream
	for i := range sst {
		st, err := s.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(st, one); err != nil || one[0] != byte('a'+i) {
			t.Fatalf("accepted stream %d read %q, %v", i, one, err)
		}
		sst[i] = st
	}
	cst[2].SetReadDeadline(time.Now().Add(failSafe))
	if n, err := cst[2].Read(one); n != 0 || !errors.Is(err, ErrStreamReset) {
		t.Fatalf("third stream Read: %d, %v; want ErrStreamReset", n, err)
	}
	if _, err := cst[2].Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("third stream Write: %v; want ErrStreamReset", err)
	}
	if err := cst[2].Close(); err != nil {
		t.Fatalf("Close of a reset stream: %v", err)
	}
	if s.NumStreams() != 2 {
		t.Fatalf("server NumStreams = %d, want 2", s.NumStreams())
	}
	// The first two still work.
	for i := range sst {
		if _, err := sst[i].Write([]byte{'0' + byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cst[i], one); err != nil || one[0] != '0'+byte(i) {
			t.Fatalf("stream %d after the reset: %q, %v", i, one, err)
		}
	}

	// Close the first on both sides: the server first, then the client
	// once it has read the server's FIN, so the server has both FINs
	// before it sees the next SYN.
	if err := sst[0].Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := cst[0].Read(one); n != 0 || err != io.EOF {
		t.Fatalf("Read after the server closed: %d, %v; want io.EOF", n, err)
	}
	if err := cst[0].Close(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("d")); err != nil {
		t.Fatal(err)
	}
	nst := recv(t, async(func() *Stream { st, _ := s.Accept(); return st }), "Accept after a slot freed")
	if nst == nil {
		t.Fatal("Accept failed")
	}
	if _, err := io.ReadFull(nst, one); err != nil || one[0] != 'd' {
		t.Fatalf("new stream read %q, %v", one, err)
	}
	if _, err := nst.Write([]byte("e")); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(failSafe))
	if _, err := io.ReadFull(st, one); err != nil || one[0] != 'e' {
		t.Fatalf("new stream got %q, %v; want \"e\"", one, err)
	}
}

// TestOnStreamAndOnClose: streams taken by OnStream (no Accept), OnClose
// called once with the reason on both sides, Err and CloseChan.
func TestOnStreamAndOnClose(t *testing.T) {
	type closeCall struct {
		side string
		err  error
	}
	calls := make(chan closeCall, 8)
	var clientCalls, serverCalls atomic.Int32
	done := make(chan struct{})
	handlers := make(chan struct{}, 16)
	scfg := Config{
		OnStream: func(st *Stream) {
			go func() {
				defer func() { handlers <- struct{}{} }()
				echo(st)
			}()
		},
		OnClose: func(err error) { serverCalls.Add(1); calls <- closeCall{"server", err} },
	}
	ccfg := Config{OnClose: func(err error) { clientCalls.Add(1); calls <- closeCall{"client", err} }}
	c, s := pair(t, overTLS, ccfg, scfg)
	defer close(done)

	for i := range 3 {
		want := pattern(byte(i), 70<<10)
		mustEqual(t, "echo via OnStream", roundTrip(t, c, want), want)
		recv(t, handlers, "OnStream handler")
	}
	if s.accept != nil {
		t.Fatal("a session with OnStream has an accept queue")
	}
	if c.Err() != nil || s.Err() != nil || c.IsClosed() || s.IsClosed() {
		t.Fatalf("open sessions: Err %v and %v, IsClosed %v and %v", c.Err(), s.Err(), c.IsClosed(), s.IsClosed())
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // again: no second OnClose
	if err := c.Err(); err != ErrSessionClosed {
		t.Fatalf("client Err after Close: %v, want ErrSessionClosed", err)
	}
	if !c.IsClosed() {
		t.Fatal("IsClosed false after Close")
	}
	// The server sees the connection end.
	waitClosed(t, s)
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("server Err after the client closed: %v, want ErrSessionClosed", err)
	}
	s.Close() // after the fact: no second OnClose, Err unchanged
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("server Err changed to %v", err)
	}
	got := map[string]error{}
	for range 2 {
		call := recv(t, calls, "OnClose")
		if _, dup := got[call.side]; dup {
			t.Fatalf("OnClose called twice on the %s", call.side)
		}
		got[call.side] = call.err
	}
	if got["client"] != ErrSessionClosed {
		t.Fatalf("client OnClose(%v), want ErrSessionClosed", got["client"])
	}
	if !errors.Is(got["server"], ErrSessionClosed) || got["server"] != s.Err() {
		t.Fatalf("server OnClose(%v), want Err() = %v", got["server"], s.Err())
	}
	// Close, Open and Ping after the end.
	if _, err := c.Open(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	if _, err := c.Ping(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if _, err := s.Accept(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Accept after the end: %v", err)
	}
	// Checked last, after everything that could have called OnClose again.
	t.Cleanup(func() {
		if n, m := clientCalls.Load(), serverCalls.Load(); n != 1 || m != 1 {
			t.Errorf("OnClose called %d times on the client, %d on the server; want once each", n, m)
		}
	})
}

// TestPendingCallsEndWithSession: a Read waiting for data, a Write waiting
// for window and an Accept all return errors when the session ends.
func TestPendingCallsEndWithSession(t *testing.T) {
	for _, closer := range []string{"local Close", "peer Close"} {
		t.Run(closer, func(t *testing.T) {
			c, s := pair(t, overTLS, Config{}, Config{Window: initialWindow})
			reader, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			writer, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			readRes := async(func() ioResult { n, err := reader.Read(make([]byte, 10)); return ioResult{n, err} })
			// 1 MiB into a 256 KiB window nobody reads: blocks.
			writeRes := async(func() ioResult { n, err := writer.Write(make([]byte, 1<<20)); return ioResult{n, err} })
			acceptRes := async(func() error { _, err := c.Accept(); return err })

			// Wait until the writer's stream reached the server.
			for i := 0; ; i++ {
				sst, err := s.Accept()
				if err != nil {
					t.Fatal(err)
				}
				if sst.ID() == writer.ID() {
					break
				}
				if i > 2 {
					t.Fatal("writer's stream never arrived")
				}
			}
			if closer == "local Close" {
				c.Close()
			} else {
				s.Close()
			}
			r := recv(t, readRes, "pending Read")
			if r.n != 0 || !errors.Is(r.err, ErrSessionClosed) {
				t.Errorf("pending Read: %d, %v; want ErrSessionClosed", r.n, r.err)
			}
			w := recv(t, writeRes, "pending Write")
			if w.err == nil || w.n >= 1<<20 {
				t.Errorf("pending Write: %d, %v; want an error before all was written", w.n, w.err)
			}
			if err := recv(t, acceptRes, "pending Accept"); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("pending Accept: %v; want ErrSessionClosed", err)
			}
			waitClosed(t, c)
			if err := c.Err(); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("client Err: %v", err)
			}
			// And new calls on the old streams fail at once.
			if _, err := writer.Write([]byte("x")); err == nil {
				t.Error("Write on a stream of an ended session succeeded")
			}
			if _, err := reader.Read(make([]byte, 1)); !errors.Is(err, ErrSessionClosed) {
				t.Errorf("Read on a stream of an ended session: %v", err)
			}
		})
	}
}

func TestPing(t *testing.T) {
	for _, k := range transports {
		t.Run(string(k), func(t *testing.T) {
			c, s := pair(t, k, Config{}, Config{})
			for _, side := range []*Session{c, s, c} {
				rtt, err := side.Ping()
				if err != nil {
					t.Fatal(err)
				}
				if rtt <= 0 || rtt > failSafe {
					t.Fatalf("Ping RTT %v", rtt)
				}
			}
		})
	}
}

// TestPingTimeout: a peer that never answers makes Ping return ErrTimeout
// after the write timeout, without ending the session.
func TestPingTimeout(t *testing.T) {
	cc, sc := tcpConns(t)
	c := Client(cc, Config{WriteTimeout: 100 * time.Millisecond})
	defer waitClosed(t, c)
	defer c.Close()
	drained := async(func() error { _, err := io.Copy(io.Discard, sc); return err })
	start := time.Now()
	if _, err := c.Ping(); !errors.Is(err, ErrTimeout) || !isTimeoutErr(err) {
		t.Fatalf("unanswered Ping: %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("Ping gave up after %v, before the write timeout", el)
	}
	if c.IsClosed() {
		t.Fatalf("an unanswered Ping closed the session: %v", c.Err())
	}
	c.Close()
	sc.Close()
	recv(t, drained, "drain")
}

// TestKeepAlive: pings go out every KeepAlive and answered ones keep the
// session open; a peer that stops answering ends it with ErrKeepAlive.
func TestKeepAlive(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		// The peer is played by hand: it answers pings and counts them.
		cc, sc := tcpConns(t)
		c := Client(cc, Config{KeepAlive: 10 * time.Millisecond, WriteTimeout: 2 * time.Second})
		defer waitClosed(t, c)
		defer c.Close()
		pings := make(chan uint32, 100)
		peer := async(func() error {
			defer close(pings)
			for {
				h, _, err := readFrame(sc)
				if err != nil {
					return err
				}
				if h.typ() != typePing || h.flags() != flagSYN || h.streamID() != 0 {
					return errors.New("unexpected " + h.String())
				}
				pong := newHeader(typePing, flagACK, 0, h.length())
				if _, err := sc.Write(pong[:]); err != nil {
					return err
				}
				pings <- h.length()
			}
		})
		seen := map[uint32]bool{}
		for len(seen) < 5 {
			id, ok := <-pings
			if !ok {
				t.Fatalf("peer stopped: %v", <-peer)
			}
			if seen[id] {
				t.Fatalf("ping ID %d used twice", id)
			}
			seen[id] = true
		}
		if c.IsClosed() {
			t.Fatalf("answered keepalives closed the session: %v", c.Err())
		}
		c.Close()
		if err := recv(t, peer, "peer"); err == nil {
			t.Fatal("peer read on after the session closed")
		}
	})

	t.Run("peer stops reading", func(t *testing.T) {
		// A real server session whose reader is stuck: the pings sit in its
		// socket buffer, unanswered.
		cc, sc := tcpConns(t)
		gated := newGatedConn(sc, true)
		reasons := make(chan error, 2)
		c := Client(cc, Config{KeepAlive: 20 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, OnClose: func(err error) { reasons <- err }})
		s := Server(gated, Config{})
		defer func() { s.Close(); waitClosed(t, s) }()
		defer c.Close()
		start := time.Now()
		waitClosed(t, c)
		if err := c.Err(); !errors.Is(err, ErrKeepAlive) {
			t.Fatalf("session ended with %v, want ErrKeepAlive", err)
		}
		if err := recv(t, reasons, "OnClose"); !errors.Is(err, ErrKeepAlive) {
			t.Fatalf("OnClose(%v), want ErrKeepAlive", err)
		}
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Fatalf("keepalive gave up after %v, before the write timeout", el)
		}
		// Once it reads again, the stuck server finds the connection closed.
		gated.Resume()
		waitClosed(t, s)
		if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("server Err %v", err)
		}
	})
}
