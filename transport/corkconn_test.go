package transport

import (
	"io"
	"net"
	"testing"
	"time"
)

// The first write goes out at once; writes after the first read are held
// and go out in one write when the next read starts; then writes pass
// straight through.
func TestCorkConnHoldsWritesUntilTheNextRead(t *testing.T) {
	a, b := net.Pipe() // a write on a pipe waits for the peer's read
	defer a.Close()
	defer b.Close()
	c := newCorkConn(a)
	peer := make(chan []byte, 4)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := b.Read(buf)
			if err != nil {
				close(peer)
				return
			}
			peer <- append([]byte(nil), buf[:n]...)
			if string(buf[:n]) == "finishedhello" {
				_, _ = b.Write([]byte("welcome"))
			}
		}
	}()
	bounded := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return", what)
		}
	}

	bounded("the first write", func() { _, _ = c.Write([]byte("clienthello")) })
	if got := string(<-peer); got != "clienthello" {
		t.Fatalf("first write: peer read %q", got)
	}
	go func() { _, _ = b.Write([]byte("flight")) }()
	buf := make([]byte, 64)
	if n, err := io.ReadAtLeast(c, buf, 6); err != nil || string(buf[:n]) != "flight" {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	// Held: on a pipe, a write that went out would wait for the peer,
	// which reads only what arrives.
	bounded("held writes", func() {
		_, _ = c.Write([]byte("finished"))
		_, _ = c.Write([]byte("hello"))
	})
	if n, err := io.ReadAtLeast(c, buf, 7); err != nil || string(buf[:n]) != "welcome" {
		t.Fatalf("second read: %q %v", buf[:n], err)
	}
	if got := string(<-peer); got != "finishedhello" {
		t.Fatalf("held writes went out as %q, want one write of both", got)
	}
	bounded("a write after", func() { _, _ = c.Write([]byte("eval")) })
	if got := string(<-peer); got != "eval" {
		t.Fatalf("write after: %q", got)
	}
}
