package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestSetupTurns: once armed, a read that brings data takes a turn on the
// gate, and the connection's next read gives it back before it waits for
// the peer; finish gives back what is held and ends the turns; a
// connection that never finishes stops taking turns after maxSetupTurns.
func TestSetupTurns(t *testing.T) {
	g := newHandshakeGate(1, 5*time.Second)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sc := &setupConn{Conn: a, g: g}
	buf := make([]byte, 1)
	read := func() {
		t.Helper()
		if _, err := io.ReadFull(sc, buf); err != nil {
			t.Fatal(err)
		}
	}
	send := func(s string) {
		go func() { _, _ = b.Write([]byte(s)) }()
	}

	send("a")
	read()
	if len(g.slots) != 0 {
		t.Fatal("a read before the TLS flight took a turn")
	}

	sc.arm()
	send("b")
	read()
	if len(g.slots) != 1 {
		t.Fatal("a read that brought data took no turn")
	}
	// The next read gives the turn back before it waits: the slot is
	// free for someone else while it does.
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(sc, buf)
		got <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.acquire(ctx, b); err != nil {
		t.Fatalf("the turn was not given back by a read waiting for the peer: %v", err)
	}
	g.release(time.Now(), b)
	send("c")
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if len(g.slots) != 1 {
		t.Fatal("the waiting read took no turn when its data came")
	}

	sc.finish()
	if len(g.slots) != 0 {
		t.Fatal("finish kept the turn")
	}
	send("d")
	read()
	if len(g.slots) != 0 {
		t.Fatal("a read after finish took a turn")
	}

	// Never finished: turns stop after maxSetupTurns.
	a2, b2 := net.Pipe()
	defer a2.Close()
	defer b2.Close()
	sc2 := &setupConn{Conn: a2, g: g}
	sc2.arm()
	for i := range maxSetupTurns + 1 {
		go func() { _, _ = b2.Write([]byte{'x'}) }()
		if _, err := io.ReadFull(sc2, buf); err != nil {
			t.Fatal(err)
		}
		if held := len(g.slots) == 1; held != (i < maxSetupTurns) {
			t.Fatalf("read %d: turn held %v", i+1, held)
		}
	}
}
