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

// runInBackground runs t.Run on a goroutine of its own; the channel is
// closed when it returns.
func runInBackground(t *turn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		t.Run(context.Background())
	}()
	return ch
}

// queuedSignal makes cs report each chunk that queues.
func queuedSignal(cs *cpuShare) <-chan struct{} {
	ch := make(chan struct{}, 16)
	cs.queued = func() { ch <- struct{}{} }
	return ch
}

func TestCPUShareFreeSlotsAreTakenAtOnce(t *testing.T) {
	cs := startShare(t, 2, time.Hour)
	var ca, cb chunkCost
	a, b := cs.turn(&ca), cs.turn(&cb)
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
	a.done()
	if !ca.seen || ca.avg <= 0 || ca.avg != a.spent {
		t.Fatalf("the chunk's cost is not its session's estimate: avg %v (seen %v), spent %v", ca.avg, ca.seen, a.spent)
	}
}

// A busy slot goes first to the session whose chunks are the shortest,
// whatever the order the chunks queued in.
func TestCPUShareServesTheLightestSessionFirst(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	heavy, light, holder := &chunkCost{}, &chunkCost{}, &chunkCost{}
	heavy.add(500 * time.Millisecond)
	light.add(50 * time.Microsecond)

	h := cs.turn(holder)
	h.Run(context.Background())
	order := make(chan string, 2)
	var wg sync.WaitGroup
	for i, u := range []*chunkCost{heavy, light} {
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
	var ca, cb chunkCost
	a := cs.turn(&ca)
	a.Run(context.Background())
	got := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := cs.turn(&cb)
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
	var ca, cb chunkCost
	a := cs.turn(&ca)
	a.Run(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	b := cs.turn(&cb)
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

// A waiter's claim grows with its wait: a long chunk is not starved by a
// stream of short ones.
func TestCPUShareWaitingCounts(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	now := time.Now()
	heavy := &turn{cs: cs, cost: &chunkCost{avg: 10 * time.Millisecond, seen: true}, queuedAt: now.Add(-20 * time.Millisecond)}
	light := &turn{cs: cs, cost: &chunkCost{avg: 50 * time.Microsecond, seen: true}, queuedAt: now}
	if heavy.key(now) <= light.key(now) {
		t.Fatalf("a chunk that waited only twice its cost goes before a new short one: %v vs %v", heavy.key(now), light.key(now))
	}
	heavy.queuedAt = now.Add(-waitWeight * 11 * time.Millisecond)
	if heavy.key(now) >= light.key(now) {
		t.Fatalf("a chunk that waited %d times its cost is still behind a new short one: %v vs %v", waitWeight+1, heavy.key(now), light.key(now))
	}
	var fresh chunkCost
	if fresh.estimate() != newSessionCost {
		t.Fatalf("a new session's estimate is %v, want %v", fresh.estimate(), newSessionCost)
	}
	fresh.add(8 * time.Millisecond)
	fresh.add(0)
	if fresh.estimate() != 6*time.Millisecond {
		t.Fatalf("moving average %v, want 6ms", fresh.estimate())
	}
}

// When the pipe is read late (the run queue busy with other goroutines), a
// chunk that arrives a quantum later hands on the slot in transit.
func TestCPUShareArrivalHandsOnASlotInTransit(t *testing.T) {
	cs, err := newCPUShare(1)
	if err != nil {
		t.Fatal(err)
	}
	cs.quantum = 0 // every chunk is long, every turn a quantum
	queued := queuedSignal(cs)
	a := cs.turn(&chunkCost{})
	a.Run(context.Background())
	back := runInBackground(a) // yields through the pipe
	<-queued
	b := cs.turn(&chunkCost{avg: 50 * time.Microsecond, seen: true})
	b.Run(context.Background())
	if !b.held {
		t.Fatal("the arriving chunk does not hold the slot in transit")
	}
	b.Release() // sends it to a through the pipe: now read it
	passed := make(chan struct{})
	go func() {
		defer close(passed)
		cs.pass()
	}()
	defer func() {
		cs.close(true)
		<-passed
	}()
	<-back
	if !a.held {
		t.Fatal("the yielding chunk did not get its slot back")
	}
	a.Release()
	if held, q := cs.state(); held != 0 || q != 0 || cs.transit != 0 {
		t.Fatalf("held %d queued %d transit %d, want 0 0 0", held, q, cs.transit)
	}
}

// A slot goes straight from chunk to short chunk only within a quantum of
// the last poll of the network; past that it goes through the pipe, so
// that requests not yet read get their turn.
func TestCPUShareHandsOnDirectlyOnlySoonAfterAPoll(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	short := func() *turn { return cs.turn(&chunkCost{avg: time.Microsecond, seen: true}) }
	a, b, c := short(), short(), short()
	a.Run(context.Background())
	runLater := func(w *turn) <-chan struct{} {
		ch := make(chan struct{})
		go func() {
			defer close(ch)
			w.Run(context.Background())
		}()
		<-queued
		return ch
	}
	bRuns := runLater(b)
	a.Release() // never polled: through the pipe
	<-bRuns
	cs.mu.Lock()
	polled := cs.polled
	cs.mu.Unlock()
	if polled.IsZero() {
		t.Fatal("the slot went straight to b with the network never polled")
	}
	cRuns := runLater(c)
	b.Release() // polled a moment ago: straight to c
	<-cRuns
	cs.mu.Lock()
	again, transit := cs.polled, cs.transit
	cs.mu.Unlock()
	if !again.Equal(polled) || transit != 0 {
		t.Fatalf("the slot went through the pipe again (polled %v → %v, transit %d)", polled, again, transit)
	}
	c.Release()
	if held, q := cs.state(); held != 0 || q != 0 {
		t.Fatalf("held %d queued %d, want 0 and 0", held, q)
	}
}

// Once a chunk has had to wait for a slot, turns are contendedQuantum
// long, for contendedFor; a chunk alone keeps the full quantum.
func TestCPUShareShortensTurnsUnderContention(t *testing.T) {
	cs := startShare(t, 1, 250*time.Microsecond)
	queued := queuedSignal(cs)
	now := time.Now()
	if q := cs.quantumAt(now); q != 250*time.Microsecond {
		t.Fatalf("quantum %v with nobody waiting, want 250µs", q)
	}
	var ca, cb chunkCost
	a, b := cs.turn(&ca), cs.turn(&cb)
	a.Run(context.Background())
	if q := cs.quantumAt(time.Now()); q != 250*time.Microsecond {
		t.Fatalf("quantum %v with one chunk running, want 250µs", q)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Run(context.Background()) // waits: a holds the only slot
		b.Release()
	}()
	<-queued
	waited := time.Now()
	if q := cs.quantumAt(waited); q != contendedQuantum {
		t.Fatalf("quantum %v after a chunk waited, want %v", q, contendedQuantum)
	}
	if q := cs.quantumAt(waited.Add(contendedFor + time.Millisecond)); q != 250*time.Microsecond {
		t.Fatalf("quantum %v once contention is %v old, want 250µs", q, contendedFor)
	}
	a.Release()
	<-done
}

// A chunk that runs with a slot to spare cedes its CPU to the kernel at
// each quantum, and only then: not within a quantum, and not when it has
// to hand its slot on through the poller instead.
func TestCPUShareLoneChunkCedesItsCPU(t *testing.T) {
	for _, tc := range []struct {
		name      string
		slots     int
		quantum   time.Duration
		wantCedes bool
	}{
		{"quantum up, a slot spare", 2, time.Nanosecond, true},
		{"within its quantum", 2, time.Hour, false},
		{"every slot busy", 1, time.Nanosecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := startShare(t, tc.slots, tc.quantum)
			var ceded int
			cs.ceded = func() { ceded++ }
			var cost chunkCost
			tn := cs.turn(&cost)
			ctx := context.Background()
			tn.Run(ctx) // takes a slot
			for i := 0; i < 1000 && ceded < 3; i++ {
				tn.Run(ctx)
			}
			tn.Release()
			tn.done()
			if got := ceded >= 3; got != tc.wantCedes {
				t.Fatalf("ceded %d times in up to 1,000 ticks; want cedes: %v", ceded, tc.wantCedes)
			}
		})
	}
}

// A chunk about to do work it cannot break into turns (a big block the
// runtime zeroes) gives its slot straight to the next waiter, not through
// the pipe, which could not be read until the runtime preempts that work;
// with nobody waiting, the slot is freed.
func TestCPUShareStepAsideHandsTheSlotStraightOn(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	var ca, cb chunkCost
	a, b := cs.turn(&ca), cs.turn(&cb)
	a.Run(context.Background())
	bRuns := runInBackground(b)
	<-queued
	a.StepAside(context.Background())
	<-bRuns
	cs.mu.Lock()
	polled, transit, held := cs.polled, cs.transit, cs.held
	cs.mu.Unlock()
	if !polled.IsZero() || transit != 0 {
		t.Fatalf("the slot went through the pipe (polled %v, transit %d)", polled, transit)
	}
	if a.held || !b.held || held != 1 {
		t.Fatalf("after stepping aside: a holds %v, b holds %v, %d held; want false, true, 1", a.held, b.held, held)
	}
	c := cs.turn(&chunkCost{})
	cRuns := runInBackground(c)
	<-queued
	b.Release()
	<-cRuns
	aRuns := runInBackground(a) // back: queues behind c
	<-queued
	if n := len(cs.aside); n != 0 {
		t.Fatalf("%d chunks aside after the one aside came back, want 0", n)
	}
	c.StepAside(context.Background()) // straight to a
	<-aRuns
	if !a.held || c.held {
		t.Fatalf("a holds %v, c holds %v; want true and false", a.held, c.held)
	}
	c.Release()                       // back
	a.StepAside(context.Background()) // nobody waits: freed
	if held, _ := cs.state(); held != 0 {
		t.Fatalf("%d slots held after stepping aside with nobody waiting, want 0", held)
	}
	a.Release()
	if held, q := cs.state(); held != 0 || q != 0 || len(cs.aside) != 0 {
		t.Fatalf("held %d queued %d aside %d, want 0, 0 and 0", held, q, len(cs.aside))
	}
}

// One chunk at a time is aside: a second waits, holding no slot, until the
// first is back; one whose context ends while it waits goes on without.
func TestCPUShareOneChunkAsideAtATime(t *testing.T) {
	cs := startShare(t, 2, time.Hour)
	a, b, c := cs.turn(&chunkCost{}), cs.turn(&chunkCost{}), cs.turn(&chunkCost{})
	a.Run(context.Background())
	b.Run(context.Background())
	a.StepAside(context.Background())
	bAside := make(chan struct{})
	go func() {
		defer close(bAside)
		b.StepAside(context.Background())
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.StepAside(ctx) // its context is done: it does not wait
	if c.aside {
		t.Fatal("a chunk whose context ended stepped aside while another was")
	}
	select {
	case <-bAside:
		t.Fatal("a second chunk stepped aside while the first was")
	default:
	}
	a.Run(context.Background()) // back: b goes aside
	<-bAside
	if !b.aside || a.aside || len(cs.aside) != 1 {
		t.Fatalf("a aside %v, b aside %v, %d aside; want false, true, 1", a.aside, b.aside, len(cs.aside))
	}
	if held, _ := cs.state(); held != 1 || !a.held || b.held {
		t.Fatalf("%d slots held (a %v, b %v), want 1, held by a alone", held, a.held, b.held)
	}
	b.Release()
	a.Release()
	if held, q := cs.state(); held != 0 || q != 0 || len(cs.aside) != 0 {
		t.Fatalf("held %d queued %d aside %d, want 0, 0 and 0", held, q, len(cs.aside))
	}
}

// shortCost is the cost of a session whose chunks are short: a quiet client.
func shortCost() *chunkCost { return &chunkCost{avg: 10 * time.Microsecond, seen: true} }

// A chunk silent for overdueAfter while a short chunk waits (inside one
// long builtin call) loses its slot to it; until the silent chunk's next
// tick the slot goes to no long waiter; at that tick it queues again.
func TestCPUShareOverdueSlotGivenOn(t *testing.T) {
	cs := startShare(t, 1, 250*time.Microsecond) // a's chunkCost is over it: long
	queued := queuedSignal(cs)
	passed := make(chan struct{}, 16)
	cs.passed = func() { passed <- struct{}{} }
	a, b, c := cs.turn(&chunkCost{}), cs.turn(shortCost()), cs.turn(&chunkCost{})
	a.Run(context.Background())
	bRuns := runInBackground(b)
	<-queued
	select {
	case <-bRuns: // given a's slot by the timer, a having said nothing
	case <-time.After(10 * time.Second):
		t.Fatal("a short waiter did not get the slot of a chunk silent for 10 s")
	}
	cs.mu.Lock()
	revoked := cs.od.revoked
	cs.mu.Unlock()
	if held, q := cs.state(); held != 1 || q != 0 || !b.held || revoked != 1 {
		t.Fatalf("held %d queued %d, b held %v, %d revoked; want 1, 0, true, 1", held, q, b.held, revoked)
	}
	cRuns := runInBackground(c) // long: waits for a's CPU
	<-queued
	b.Release() // through the pipe: c is long
	<-passed
	if held, q := cs.state(); held != 0 || q != 1 {
		t.Fatalf("held %d queued %d after b (outstanding %d, c granted %v), want 0 and 1: the slot kept from the long waiter while a runs", held, q, cs.od.outstanding, c.granted)
	}
	aRuns := runInBackground(a) // its next tick: c gets the slot, a queues
	<-queued
	<-cRuns
	if held, q := cs.state(); held != 1 || q != 1 || !c.held {
		t.Fatalf("held %d queued %d, c held %v after a's tick, want 1, 1, true", held, q, c.held)
	}
	c.Release()
	<-aRuns
	a.Release()
	if held, q := cs.state(); held != 0 || q != 0 {
		t.Fatalf("held %d queued %d at the end, want 0 and 0", held, q)
	}
}

func TestCPUShareRevokesOnlySilentChunksForShortWaiters(t *testing.T) {
	cs, err := newCPUShare(1)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close(false)
	a, long, short := cs.turn(&chunkCost{}), cs.turn(&chunkCost{}), cs.turn(shortCost())
	a.Run(context.Background())
	cs.mu.Lock()
	long.enqueue(time.Now())
	a.watch.tick.Store(time.Now().Add(-overdueAfter).UnixNano())
	cs.mu.Unlock()
	cs.revokeOverdue()
	if a.watch.revoked.Load() {
		t.Fatal("a silent chunk lost its slot to a long waiter")
	}
	cs.mu.Lock()
	short.enqueue(time.Now())
	a.watch.tick.Store(time.Now().UnixNano())
	cs.mu.Unlock()
	cs.revokeOverdue()
	if a.watch.revoked.Load() {
		t.Fatal("a chunk that just ticked lost its slot")
	}
	a.watch.tick.Store(time.Now().Add(-overdueAfter).UnixNano())
	cs.revokeOverdue()
	if !a.watch.revoked.Load() {
		t.Fatal("a chunk silent for overdueAfter kept its slot while a short chunk waited")
	}
	select {
	case <-short.ready:
	case <-long.ready:
		t.Fatal("the long waiter was given the slot")
	default:
		t.Fatal("the short waiter was not given the slot")
	}
}
