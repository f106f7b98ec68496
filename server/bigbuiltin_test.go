package server_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rshell/rshell/transport"
)

// answersDuring starts a server with one CPU slot, runs src in one session
// (it prints once, then does the long work) and counts how many of want
// evals of 1+1 a quiet client gets answered before src ends; then it
// cancels src and returns how src ended. A warm quiet session has run
// chunks before, so the server knows its chunks are short.
func answersDuring(t *testing.T, src string, want int, warm bool) (answered int, srcErr error) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := start(t, false, nil)
	heavy, quiet := ts.dial(t), ts.dial(t)
	if warm {
		for range 3 {
			eval(t, quiet, "1 + 1")
		}
	}

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	var finished atomic.Bool
	go func() {
		_, err := heavy.Exec(ctx, transport.EvalRequest{Src: src}, func(string) { started <- struct{}{} })
		finished.Store(true)
		done <- err
	}()
	<-started

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
	return answered, <-done
}

// On a real server with one CPU slot, a session inside a built-in that goes
// through a million elements in one call (sorted) does not keep a quiet
// client waiting for the whole call: the quiet client's evals are answered
// while it runs, and the call stops when it is cancelled. Before the
// built-ins took turns, the quiet client's first eval waited for the sort.
func TestQuietClientServedDuringBigBuiltin(t *testing.T) {
	const want = 5
	answered, err := answersDuring(t, "print('go')\nlen(sorted(range(1 << 21, 0, -1)))", want, false)
	if answered < want {
		t.Fatalf("the quiet client got %d answers while the sort ran, want %d (the sort ended with %v)", answered, want, err)
	}
	if err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Errorf("the sort ended with %v, want its cancel", err)
	}
}

// A chunk silent inside a call the interpreter cannot break into turns
// (formatting a 4M-element list with %) loses its CPU slot to a quiet
// client's chunk after overdueAfter: the quiet client is answered while it
// runs. Only a short chunk is let in so: the quiet session is warm (a new
// session's first chunk waits like a long one).
func TestQuietClientServedBesideASilentChunk(t *testing.T) {
	const want = 3
	// The loop after print takes a turn again (print gave it up).
	src := "x = list(range(4 << 20))\nprint('go')\nfor i in range(5000):\n    pass\nlen('%s' % (x,))"
	answered, err := answersDuring(t, src, want, true)
	if answered < want {
		t.Fatalf("the quiet client got %d answers beside the silent chunk, want %d (it ended with %v)", answered, want, err)
	}
}
