package session

import (
	"context"
	"strings"
	"testing"

	"github.com/rshell/rshell/transport"
)

// countingCPU records the calls a session makes to its CPU share.
type countingCPU struct {
	runs, releases int
	wait           chan struct{} // when set, Run closes it and waits for ctx, as a CPU busy with others
}

func (c *countingCPU) Run(ctx context.Context) {
	c.runs++
	if c.wait != nil {
		close(c.wait)
		<-ctx.Done()
	}
}

func (c *countingCPU) Release() { c.releases++ }

func TestChunksTakeTurnsOnTheCPU(t *testing.T) {
	s := New(Options{})
	for _, tc := range []struct {
		src              string
		minRuns, minRels int
	}{
		{"1 + 1", 1, 1}, // asks for a turn before it runs, gives it back at the end
		{"n = 0\nfor i in range(100000):\n    n += i\nn", 10, 1}, // and at every tick
		{"time.sleep(0.002)", 1, 2},                              // and gives it back before it blocks
		{"print(1)", 1, 2},                                       // or prints (to a client that may not read)
		{"os.exists('/')", 1, 2},                                 // or asks the file system
	} {
		cpu := &countingCPU{}
		if _, ei := s.Eval(WithCPU(context.Background(), cpu), tc.src, "", nil); ei != nil {
			t.Fatalf("%q: %s", tc.src, ei.Msg)
		}
		if cpu.runs < tc.minRuns || cpu.releases < tc.minRels {
			t.Errorf("%q: %d runs, %d releases; want at least %d and %d", tc.src, cpu.runs, cpu.releases, tc.minRuns, tc.minRels)
		}
	}
}

func TestChunkCancelledWaitingForTheCPU(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, ei := s.Eval(WithCPU(ctx, &countingCPU{wait: make(chan struct{})}), "x = 1", "", nil)
	if ei == nil {
		t.Fatal("a chunk stopped before its turn ran")
	}
	// A context cancelled before the chunk starts is reported as such...
	if ei.Kind != transport.KindCancelled {
		t.Fatalf("kind %s, want cancelled", ei.Kind)
	}

	// ...and one cancelled while it waits says what it waited for.
	ctx, cancel = context.WithCancel(context.Background())
	cpu := &countingCPU{wait: make(chan struct{})}
	done := make(chan *transport.ErrorInfo)
	go func() {
		_, ei := s.Eval(WithCPU(ctx, cpu), "y = 1", "", nil)
		done <- ei
	}()
	<-cpu.wait
	cancel()
	ei = <-done
	if ei == nil || ei.Kind != transport.KindCancelled || !strings.Contains(ei.Msg, "waiting for a turn on the server's CPU") {
		t.Fatalf("got %+v", ei)
	}
	if _, ei := s.Eval(context.Background(), "y", "", nil); ei == nil {
		t.Fatal("the chunk that never ran bound y")
	}
}
