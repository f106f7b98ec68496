package server_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rshell/rshell/transport"
)

// On a real server with one CPU slot, a session inside a built-in that goes
// through a million elements in one call (sorted) does not keep a quiet
// client waiting for the whole call: the quiet client's evals are answered
// while it runs, and the call stops when it is cancelled. Before the
// built-ins took turns, the quiet client's first eval waited for the sort.
func TestQuietClientServedDuringBigBuiltin(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := start(t, false, nil)
	heavy, quiet := ts.dial(t), ts.dial(t)

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	var finished atomic.Bool
	go func() {
		_, err := heavy.Exec(ctx, transport.EvalRequest{Src: "print('go')\nlen(sorted(range(1 << 21, 0, -1)))"},
			func(string) { started <- struct{}{} })
		finished.Store(true)
		done <- err
	}()
	<-started

	const want = 5
	answered := 0
	for range want {
		if v := eval(t, quiet, "1 + 1"); !v.Equal(transport.Int(2)) {
			t.Fatalf("1 + 1 = %+v", v)
		}
		if finished.Load() {
			break
		}
		answered++
	}
	cancel()
	err := <-done
	if answered < want {
		t.Fatalf("the quiet client got %d answers while the sort ran, want %d (the sort ended with %v)", answered, want, err)
	}
	if err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Errorf("the sort ended with %v, want its cancel", err)
	}
}
