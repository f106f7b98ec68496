package mux

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// stuckPeer connects a client session (WriteTimeout wt) to a server
// session whose reader is stuck, over loopback TCP (under TLS if k says
// so) with kernel buffers of a few KiB, so that a big Write fills the
// connection. It returns the sessions, the gate that unsticks the server
// (under its TLS, as a stuck process would be), and the server's TCP conn.
func stuckPeer(t *testing.T, k transportKind, wt time.Duration) (c, s *Session, gated *gatedConn, rawServer net.Conn) {
	t.Helper()
	cc, sc := tcpConnsBuf(t, 4096)
	gated = newGatedConn(sc, false)
	var cconn, sconn net.Conn = cc, gated
	if k == overTLS {
		ccfg, scfg := tlsConfigs()
		tc, ts := tls.Client(cc, ccfg), tls.Server(gated, scfg)
		errc := async(ts.Handshake)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, errc, "handshake"); err != nil {
			t.Fatal(err)
		}
		cconn, sconn = tc, ts
	}
	gated.Stop()
	c = Client(cconn, Config{WriteTimeout: wt})
	s = Server(sconn, Config{})
	t.Cleanup(func() {
		c.Close()
		s.Close()
		waitClosed(t, c)
		waitClosed(t, s)
	})
	return c, s, gated, sc
}

// TestWriteTimeout: a Write into a connection the peer does not read fails
// with ErrWriteTimeout after about the write timeout, the session ends with
// that reason, and the peer, once it reads again, sees the end.
func TestWriteTimeout(t *testing.T) {
	const wt = 200 * time.Millisecond
	c, s, gated, _ := stuckPeer(t, overTCP, wt)
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := recv(t, async(func() ioResult { n, err := st.Write(make([]byte, 4<<20)); return ioResult{n, err} }), "stuck Write")
	el := time.Since(start)
	if !errors.Is(res.err, ErrWriteTimeout) {
		t.Fatalf("Write to a stuck peer: %d bytes, %v; want ErrWriteTimeout", res.n, res.err)
	}
	if res.n >= initialWindow {
		t.Fatalf("Write reports %d bytes written, more than fit", res.n)
	}
	if el < wt/2 || el > wt+time.Second {
		t.Fatalf("Write failed after %v; want about the write timeout %v", el, wt)
	}
	if !c.IsClosed() {
		t.Fatal("session open after a write timeout")
	}
	if err := c.Err(); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Err() = %v, want ErrWriteTimeout", err)
	}
	if _, err := st.Write([]byte("x")); err == nil {
		t.Fatal("Write after the session ended succeeded")
	}
	if _, err := c.Open(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Open after a write timeout: %v", err)
	}
	gated.Resume()
	waitClosed(t, s)
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("peer's Err = %v, want ErrSessionClosed", err)
	}
}

// TestWriteTimeoutPipe: the same against a peer that reads the stream's
// SYN and then nothing, over a synchronous pipe, where every unread byte
// blocks.
func TestWriteTimeoutPipe(t *testing.T) {
	cp, sp := net.Pipe()
	defer sp.Close()
	c := Client(cp, Config{WriteTimeout: 200 * time.Millisecond})
	defer waitClosed(t, c)
	defer c.Close()
	syn := async(func() error { _, _, err := readFrame(sp); return err })
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv(t, syn, "SYN"); err != nil {
		t.Fatal(err)
	}
	n, err := st.Write(make([]byte, 100<<10))
	if !errors.Is(err, ErrWriteTimeout) || n != 0 {
		t.Fatalf("Write: %d, %v; want 0, ErrWriteTimeout", n, err)
	}
	if !errors.Is(c.Err(), ErrWriteTimeout) {
		t.Fatalf("Err() = %v", c.Err())
	}
	// The peer sees the pipe closed.
	if _, err := sp.Read(make([]byte, 1)); err == nil {
		t.Fatal("peer read from a pipe the session closed")
	}
}

// TestWriteTimeoutTLS: under TLS too, a Write into a connection the peer
// does not read must fail after about the write timeout. It fails: the
// timed-out write calls closeWith (session.go), whose conn.Close is
// tls.Conn.Close, which sends a close_notify alert with a 5 s deadline of
// its own into the same full connection. So the Write returns after the
// write timeout plus 5 s, holding the write lock all along (every other
// writer waits), and any Close() meanwhile waits in closeOnce. Fix: on a
// write failure (or always), close the transport under TLS first, e.g.
// via conn.(interface{ NetConn() net.Conn }), so that no alert is tried.
func TestWriteTimeoutTLS(t *testing.T) {
	const wt = 200 * time.Millisecond
	c, s, gated, rawServer := stuckPeer(t, overTLS, wt)
	st, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := async(func() ioResult { n, err := st.Write(make([]byte, 4<<20)); return ioResult{n, err} })
	var r ioResult
	select {
	case r = <-res:
	case <-time.After(wt + time.Second):
		// Unstick it by resetting the connection, so the test fails
		// quickly instead of waiting for tls's 5 s.
		t.Errorf("Write still blocked %v after it started; write timeout %v (session closed: %v, Err %v)",
			time.Since(start).Round(time.Millisecond), wt, c.IsClosed(), c.Err())
		rawServer.Close()
		r = recv(t, res, "Write after the reset")
	}
	if !errors.Is(r.err, ErrWriteTimeout) {
		t.Fatalf("Write: %d, %v; want ErrWriteTimeout", r.n, r.err)
	}
	if err := c.Err(); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Err() = %v, want ErrWriteTimeout", err)
	}
	gated.Resume()
	waitClosed(t, s)
	if err := s.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("peer's Err = %v, want ErrSessionClosed", err)
	}
}
