package server_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// stalledConn stops reading from the socket until released: a peer whose
// process is stuck, or a congested network, as the server sees it.
type stalledConn struct {
	net.Conn
	release chan struct{}
}

func (c *stalledConn) Read(p []byte) (int, error) {
	<-c.release
	return c.Conn.Read(p)
}

// yamux v0.1.2 (GO-2025-3408): a Stream.Write that fails with
// ErrConnectionWriteTimeout leaves the session open, and the peer's Read
// waiting for that write hangs until the session closes. The server closes
// the whole connection on a write timeout; this test produces one with a
// real socket that the peer stops reading.
func TestWriteTimeoutClosesConnection(t *testing.T) {
	ts := start(t, true, func(c *server.Config) { c.WriteTimeout = 300 * time.Millisecond })
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.ClientHandshake(nc, ts.opts.Token, "stalled", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	sc := &stalledConn{Conn: nc, release: make(chan struct{})}
	mux := transport.ClientMux(sc, transport.MuxOptions{KeepAlive: time.Hour})
	defer mux.Close()
	att, _ := mux.Open()
	_ = transport.WriteMsg(att, &transport.Msg{T: transport.TAttach}, 0)
	// 60 downloads of 1 MiB each: 60 × yamux's 256 KiB window is more than
	// loopback's socket buffers hold, so the server's writes stall.
	for i := 0; i < 60; i++ {
		st, err := mux.Open()
		if err != nil {
			t.Fatal(err)
		}
		_ = transport.WriteMsg(st, &transport.Msg{T: transport.TDownload, Path: big}, 0)
	}
	// Bounded wait for the server's verdict, read from its log.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(ts.logs.String(), "write timed out; closing the connection") {
		if time.Now().After(deadline) {
			t.Fatalf("no write timeout; log:\n%s", ts.logs.String())
		}
		time.Sleep(10 * time.Millisecond) // bounded poll of the log
	}
	close(sc.release)
	// The connection is gone for the stalled peer...
	select {
	case <-mux.CloseChan():
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled connection was not closed")
	}
	// ...and everyone else is served.
	healthy(t, ts)
}
