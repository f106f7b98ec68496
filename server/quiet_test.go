package server_test

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
)

// TestQuietServerReturnsMemory: a chunk makes 64 MiB of garbage; no
// collection would run on an idle server, so without the quiet-time
// collection the memory stays mapped. It must be back with the OS within a
// few quiet seconds.
func TestQuietServerReturnsMemory(t *testing.T) {
	// Memory is counted for the whole process: start from what it needs,
	// not from what earlier tests left.
	debug.FreeOSMemory()
	ts := start(t, false, nil)
	c := ts.dial(t)
	eval(t, c, "x = 'a' * (64 << 20)")
	eval(t, c, "x = None")
	high := server.MemoryInUseForTest()
	deadline := time.Now().Add(15 * time.Second)
	for {
		now := server.MemoryInUseForTest()
		if now+48<<20 < high {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory in use still %d MiB after 15 s of quiet (%d MiB after the burst)", now>>20, high>>20)
		}
		time.Sleep(50 * time.Millisecond) // bounded poll: nothing signals a collection
	}
}
