package server_test

import (
	"testing"
	"time"

	"github.com/rshell/rshell/server"
)

// waitSettled waits (bounded) for the server's count of settled
// connections to be want.
func waitSettled(t *testing.T, s *server.Server, want int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for server.SettledForTest(s) != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // bounded poll: the count moves on a timer
	}
	if got := server.SettledForTest(s); got != want {
		t.Fatalf("%d settled connections, want %d", got, want)
	}
}

// A connection counts as settled (new connections' setup is paced for it)
// once it has been open for a second, and stops counting when it closes.
func TestConnectionsSettle(t *testing.T) {
	ts := start(t, false, nil)
	brief := ts.dial(t)
	brief.Close()
	c := ts.dial(t)
	eval(t, c, "1 + 1")
	waitSettled(t, ts.srv, 1)
	c.Close()
	waitSettled(t, ts.srv, 0)
}
