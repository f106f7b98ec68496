package session

import (
	"context"
	"strings"
	"testing"
	"time"

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

// pausingCPU is a countingCPU whose waits are pauses.
type pausingCPU struct{ countingCPU }

func (p *pausingCPU) Waiting() string { return "the end of a pause" }

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
		// A big value is built in pieces, each counted in steps, with
		// ticks between them (third_party/starlark-go.patch): 16 MiB in
		// 16 KiB pieces, at a step per 4 bytes, is ~1,024 ticks.
		{`len("x" * (16 << 20))`, 800, 1},
		{"len([0] * (1 << 20))", 800, 1},
		{`s = "y" * (8 << 20)` + "\nlen(s + s)", 1200, 1},
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

// cancelAtRun is a CPU that cancels the chunk's context at its nth turn.
type cancelAtRun struct {
	n, runs int
	cancel  context.CancelFunc
}

func (c *cancelAtRun) Run(context.Context) {
	if c.runs++; c.runs == c.n {
		c.cancel()
	}
}

func (c *cancelAtRun) Release() {}

// A big repeat stops when its chunk is cancelled, midway, instead of
// building the whole value first; a step limit counts its work.
func TestBigValueStopsMidway(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cpu := &cancelAtRun{n: 10, cancel: cancel}
	_, ei := s.Eval(WithCPU(ctx, cpu), `x = "x" * (512 << 20)`, "", nil)
	if ei == nil || ei.Kind != transport.KindCancelled {
		t.Fatalf("cancelled repeat: %+v, want a cancelled error", ei)
	}
	if cpu.runs != cpu.n {
		t.Fatalf("the repeat went on for %d turns after it was cancelled at turn %d", cpu.runs-cpu.n, cpu.n)
	}
	if ei := evalErr(t, s, "x"); !strings.Contains(ei.Msg, "undefined") {
		t.Fatalf("after the cancelled chunk, x: %s, want it undefined", ei.Msg)
	}

	limited := New(Options{MaxSteps: 100_000})
	if ei := evalErr(t, limited, `len("x" * (16 << 20))`); !strings.Contains(ei.Msg, "step") {
		t.Fatalf("16 MiB under a 100,000-step limit: %s: %s, want the step limit", ei.Kind, ei.Msg)
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
	// A CPU that says the wait was something else (its session's pause)
	// is quoted instead.
	paused := &pausingCPU{countingCPU{wait: make(chan struct{})}}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		_, ei := s.Eval(WithCPU(ctx, paused), "y = 1", "", nil)
		done <- ei
	}()
	<-paused.wait
	cancel()
	if ei := <-done; ei == nil || !strings.Contains(ei.Msg, "while waiting for the end of a pause (this chunk never ran)") {
		t.Fatalf("cancelled in a pause: %+v", ei)
	}
	if _, ei := s.Eval(context.Background(), "y", "", nil); ei == nil {
		t.Fatal("the chunk that never ran bound y")
	}
}

// loggingCPU logs the calls a session makes to its CPU share, StepAside
// among them.
type loggingCPU struct{ log []string }

func (c *loggingCPU) Run(context.Context)       { c.log = append(c.log, "run") }
func (c *loggingCPU) Release()                  { c.log = append(c.log, "release") }
func (c *loggingCPU) StepAside(context.Context) { c.log = append(c.log, "aside") }

// Before the interpreter allocates a big list or tuple, which the runtime
// zeroes in one piece, the chunk steps aside, and takes a turn again right
// after; a CPU that cannot step aside is released instead.
func TestBigAllocationStepsAside(t *testing.T) {
	s := New(Options{})
	for _, tc := range []struct {
		src    string
		asides int
	}{
		{"len([0] * 10 + [1] * 10)", 0},
		{"len([0] * (1 << 20))", 1},
		{"x = (0,) * (1 << 20)\nlen(x + x)", 2},
	} {
		cpu := &loggingCPU{}
		if _, ei := s.Eval(WithCPU(context.Background(), cpu), tc.src, "", nil); ei != nil {
			t.Fatalf("%q: %s", tc.src, ei.Msg)
		}
		asides := 0
		for i, e := range cpu.log {
			if e != "aside" {
				continue
			}
			asides++
			if i+1 == len(cpu.log) || cpu.log[i+1] != "run" {
				t.Errorf("%q: stepping aside not followed by a turn: %v", tc.src, cpu.log)
			}
		}
		if asides != tc.asides {
			t.Errorf("%q: stepped aside %d times, want %d", tc.src, asides, tc.asides)
		}
	}
	cpu := &countingCPU{}
	if _, ei := s.Eval(WithCPU(context.Background(), cpu), "len([0] * (1 << 20))", "", nil); ei != nil {
		t.Fatal(ei.Msg)
	}
	if cpu.releases < 2 {
		t.Errorf("a CPU that cannot step aside was released %d times, want at least 2", cpu.releases)
	}
}

// A builtin going through millions of elements in one call takes its turns
// as the interpreter's loop does, and stops at the chunk's deadline.
func TestBigBuiltinTakesTurns(t *testing.T) {
	s := New(Options{})
	for _, src := range []string{
		"len(sorted(range(1 << 18, 0, -1)))",
		"len(list(range(1 << 18)))",
		"max(range(1 << 18))",
	} {
		cpu := &loggingCPU{}
		if _, ei := s.Eval(WithCPU(context.Background(), cpu), src, "", nil); ei != nil {
			t.Fatalf("%q: %s", src, ei.Msg)
		}
		runs := 0
		for _, e := range cpu.log {
			if e == "run" {
				runs++
			}
		}
		// A step an element, and a tick at most every 4,096 steps.
		if want := (1 << 18) / 4096; runs < want {
			t.Errorf("%q: %d turns, want at least %d", src, runs, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, ei := s.Eval(ctx, "len(sorted(range(1 << 22, 0, -1)))", "", nil)
	if ei == nil || ei.Kind != transport.KindDeadline {
		t.Fatalf("a sort of 4M elements past its deadline: %+v, want a deadline error", ei)
	}
}
