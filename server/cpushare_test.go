package server

import (
	"context"
	"sync"
	"testing"
	"time"
)

// startShare makes a cpuShare with its pass goroutine, closed by the test.
func startShare(t *testing.T, slots int, quantum time.Duration) *cpuShare {
	t.Helper()
	cs, err := newCPUShare(slots)
	if err != nil {
		t.Fatal(err)
	}
	cs.quantum = quantum
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cs.pass()
	}()
	t.Cleanup(func() {
		cs.close(true)
		wg.Wait()
	})
	return cs
}

func (cs *cpuShare) state() (held, queued int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.held, len(cs.queue)
}

// queuedSignal makes cs report each chunk that queues.
func queuedSignal(cs *cpuShare) <-chan struct{} {
	ch := make(chan struct{}, 16)
	cs.queued = func() { ch <- struct{}{} }
	return ch
}

func TestCPUShareFreeSlotsAreTakenAtOnce(t *testing.T) {
	cs := startShare(t, 2, time.Hour)
	var ua, ub cpuUse
	a, b := cs.turn(&ua), cs.turn(&ub)
	a.Run(context.Background())
	b.Run(context.Background())
	if held, q := cs.state(); held != 2 || q != 0 {
		t.Fatalf("held %d queued %d, want 2 and 0", held, q)
	}
	a.Run(context.Background()) // within its quantum: keeps the slot
	a.Release()
	b.Release()
	b.Release() // a second release is a no-op
	if held, _ := cs.state(); held != 0 {
		t.Fatalf("held %d after release, want 0", held)
	}
	if ua.secs <= 0 || ub.secs <= 0 {
		t.Fatalf("use not charged: %v %v", ua.secs, ub.secs)
	}
}

// A busy slot goes first to the session that used the CPU least lately,
// whatever the order the chunks queued in.
func TestCPUShareServesTheLightestSessionFirst(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	now := time.Now()
	heavy, light, holder := &cpuUse{}, &cpuUse{}, &cpuUse{}
	heavy.add(500*time.Millisecond, now)
	light.add(time.Millisecond, now)

	h := cs.turn(holder)
	h.Run(context.Background())
	order := make(chan string, 2)
	var wg sync.WaitGroup
	for i, u := range []*cpuUse{heavy, light} {
		name := []string{"heavy", "light"}[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			tn := cs.turn(u)
			tn.Run(context.Background())
			order <- name
			tn.Release()
		}()
		<-queued // heavy queues first
	}
	h.Release()
	wg.Wait()
	if first := <-order; first != "light" {
		t.Fatalf("%s served first, want light", first)
	}
	if held, q := cs.state(); held != 0 || q != 0 {
		t.Fatalf("held %d queued %d at the end, want 0 and 0", held, q)
	}
}

// A chunk whose quantum is up hands its slot on through the pipe and waits
// for the next turn.
func TestCPUShareQuantumHandsTheSlotOn(t *testing.T) {
	cs := startShare(t, 1, 0)
	queued := queuedSignal(cs)
	var ua, ub cpuUse
	a := cs.turn(&ua)
	a.Run(context.Background())
	got := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := cs.turn(&ub)
		b.Run(context.Background())
		close(got)
		b.Release()
	}()
	<-queued
	a.Run(context.Background()) // quantum up: b runs, then a again
	select {
	case <-got:
	default:
		t.Fatal("the waiting chunk did not run before the yielding one came back")
	}
	wg.Wait()
	if !a.held {
		t.Fatal("the yielding chunk does not hold its slot again")
	}
	a.Release()
	if held, q := cs.state(); held != 0 || q != 0 {
		t.Fatalf("held %d queued %d, want 0 and 0", held, q)
	}
}

// A chunk cancelled while it waits leaves the queue and holds nothing.
func TestCPUShareCancelWhileWaiting(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	var ua, ub cpuUse
	a := cs.turn(&ua)
	a.Run(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	b := cs.turn(&ub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(ctx)
	}()
	<-queued
	cancel()
	<-done
	if b.held {
		t.Fatal("a cancelled waiter holds a slot")
	}
	if held, q := cs.state(); held != 1 || q != 0 {
		t.Fatalf("held %d queued %d, want 1 and 0", held, q)
	}
	a.Release()
	if held, _ := cs.state(); held != 0 {
		t.Fatalf("held %d, want 0", held)
	}
}

func TestCPUUseDecays(t *testing.T) {
	var u cpuUse
	t0 := time.Now()
	u.add(time.Second, t0)
	if got := u.now(t0.Add(usageHalfLife)); got < 0.49 || got > 0.51 {
		t.Fatalf("after one half-life: %v s, want 0.5", got)
	}
}
