package server_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// On a real server with one CPU slot, a chunk that builds a 64 MiB list
// while another session's busy loop competes for the CPU is paused for
// what it allocated past the budget, and the pause is logged with its
// session and in the chunk's result; the busy session, which allocates
// nothing, is not paused; both sessions get their answers.
func TestChunkPausedForWhatItAllocated(t *testing.T) {
	// One slot: the turn that allocated ran alone. A budget of 32 MiB/s,
	// 16 MiB at once.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := start(t, false, func(c *server.Config) { c.AllocRate = 32 << 20 })
	busy, heavy := ts.dial(t), ts.dial(t)

	ctx, cancel := context.WithCancel(testCtx(t))
	started := make(chan struct{}, 1)
	looped := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, transport.EvalRequest{Src: "print('go')\nwhile True: pass", Deadline: 20 * time.Second},
			func(string) { started <- struct{}{} })
		looped <- err
	}()
	<-started

	start := time.Now()
	res, err := heavy.Exec(testCtx(t), transport.EvalRequest{Src: "x = [0] * (4 << 20)\nlen(x)"}, nil)
	if err != nil {
		t.Fatalf("the allocating chunk: %v", err)
	}
	took := time.Since(start)
	if !res.Value.Equal(transport.Int(4 << 20)) {
		t.Errorf("len(x) = %+v", res.Value)
	}
	if !strings.Contains(res.Warn, "this chunk waited ") || !strings.Contains(res.Warn, "--alloc-rate") {
		t.Errorf("the paused chunk's result does not say why it was slow: %q", res.Warn)
	}
	cancel()
	if err := <-looped; err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Errorf("the busy loop ended with %v, want its cancel", err)
	}

	// 64 MiB past a 16 MiB burst at 32 MiB/s: 1.5 s.
	logs := ts.logs.String()
	var paused []string
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "chunk paused") {
			paused = append(paused, line)
		}
	}
	if len(paused) == 0 {
		t.Fatalf("no pause logged for a 64 MiB list built beside a busy loop (chunk took %v); logs:\n%s", took, logs)
	}
	heavyID, busyID := heavy.Attachment().Session[:8], busy.Attachment().Session[:8]
	for _, line := range paused {
		if !strings.Contains(line, "session="+heavyID) || strings.Contains(line, "session="+busyID) {
			t.Errorf("pause logged for the wrong session (heavy %s, busy %s): %s", heavyID, busyID, line)
		}
	}
	if !strings.Contains(paused[0], "wait=1.") && !strings.Contains(paused[0], "wait=2") {
		t.Errorf("the pause for 64-80 MiB past the burst should be 1.5-2 s: %s", paused[0])
	}
	if took < time.Second {
		t.Errorf("the allocating chunk took %v: it did not wait out its pause", took)
	}
}
