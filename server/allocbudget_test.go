package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The budget covers up to its burst at once, is filled at its rate, and
// says how long the allocation it does not cover takes at that rate.
func TestAllocBudgetCharges(t *testing.T) {
	b := newAllocBudget(16 << 20) // 16 MiB/s, 8 MiB at once
	now := time.Unix(1000, 0)
	if until := b.charge(8<<20, now); !until.Equal(now) {
		t.Fatalf("the burst itself waits until %v, want now", until.Sub(now))
	}
	if got, want := b.charge(4<<20, now).Sub(now), 250*time.Millisecond; got != want {
		t.Errorf("4 MiB past the burst waits %v, want %v", got, want)
	}
	// A second later the debt is paid and 12 MiB more came in: the burst.
	later := now.Add(time.Second)
	if until := b.charge(8<<20, later); !until.Equal(later) {
		t.Errorf("after a second, 8 MiB waits %v, want 0", until.Sub(later))
	}
	if got, want := b.charge(16<<20, later).Sub(later), time.Second; got != want {
		t.Errorf("16 MiB with nothing left waits %v, want %v", got, want)
	}
	if newAllocBudget(0) != nil {
		t.Error("a budget at no rate")
	}
}

// shareWithBudget is a one-slot share whose allocation counter the test
// moves, with a budget of 4 MiB at 8 MiB/s; newTurn makes a turn that reports
// its charges on charged.
func shareWithBudget(t *testing.T) (cs *cpuShare, heap *atomic.Uint64, newTurn func(*chunkCost) *turn, charged chan time.Duration) {
	cs = startShare(t, 1, time.Hour)
	heap = new(atomic.Uint64)
	heap.Store(1 << 30)
	cs.ledger.read = heap.Load
	cs.budget = newAllocBudget(8 << 20)
	charged = make(chan time.Duration, 4)
	newTurn = func(c *chunkCost) *turn {
		tn := cs.turn(c)
		tn.charged = func(_ uint64, d time.Duration) { charged <- d }
		return tn
	}
	return cs, heap, newTurn, charged
}

// While chunks compete, a session whose chunk allocated more than the
// budget covers waits for it before its next chunk runs, holding no slot;
// another session does not wait, and a wait ends with the chunk's context.
func TestCPUShareChargesAllocationWhileCompeting(t *testing.T) {
	cs, heap, newTurn, charged := shareWithBudget(t)
	cs.contended.Store(time.Now().UnixNano())
	var heavy, light chunkCost
	a := newTurn(&heavy)
	a.Run(context.Background())
	a.takenAt = a.takenAt.Add(-minChargedTurn) // as if it had run that long
	// 8 MiB past the burst: a second at 8 MiB/s.
	heap.Add(12 << 20)
	a.Release()
	select {
	case d := <-charged:
		if d < 900*time.Millisecond || d > time.Second {
			t.Errorf("charged a wait of %v for 8 MiB past the burst at 8 MiB/s, want ~1s", d)
		}
	default:
		t.Fatal("12 MiB allocated in a turn while competing was not charged")
	}
	if d := a.debt(time.Now()); d <= 0 {
		t.Fatalf("the session owes %v after its charge", d)
	}

	// Another session's chunk takes the free slot at once.
	b := newTurn(&light)
	b.Run(context.Background())
	if !b.held {
		t.Fatal("another session's chunk waited for the heavy one's debt")
	}
	b.Release()

	// The heavy session's next chunk waits; its context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	next := newTurn(&heavy)
	ran := make(chan bool, 1)
	go func() {
		next.Run(ctx)
		ran <- next.held
	}()
	cancel()
	if held := <-ran; held {
		t.Fatal("a chunk in debt took a slot")
	}
	if held, q := cs.state(); held != 0 || q != 0 {
		t.Errorf("after the cancelled wait: %d slots held, %d queued", held, q)
	}
}

// Nothing is charged while chunks have not competed for chargeFor, for a
// turn under minCharge, or for one shorter than minChargedTurn.
func TestCPUShareChargesOnlyWhatItCanAttribute(t *testing.T) {
	cs, heap, newTurn, charged := shareWithBudget(t)
	var cost chunkCost
	a := newTurn(&cost)
	run := func() {
		a.Run(context.Background())
		a.takenAt = a.takenAt.Add(-minChargedTurn)
	}
	cs.contended.Store(time.Now().Add(-chargeFor).UnixNano())
	run() // calm: not measured
	heap.Add(64 << 20)
	a.Release()

	cs.contended.Store(time.Now().UnixNano())
	run()
	heap.Add(minCharge - 1)
	a.Release()

	// A short turn, beside a big allocation, however slow the test machine.
	a.Run(context.Background())
	a.takenAt = time.Now().Add(time.Hour)
	heap.Add(64 << 20)
	a.Release()
	select {
	case d := <-charged:
		t.Fatalf("charged a wait of %v", d)
	default:
	}
	if d := a.debt(time.Now()); d > 0 {
		t.Errorf("the session owes %v", d)
	}
}

// What the process allocates while two measured turns run is split
// between them; what it allocates while one runs is that one's.
func TestAllocLedgerSplitsAmongRunningTurns(t *testing.T) {
	var heap uint64
	l := allocLedger{read: func() uint64 { return heap }}
	a := l.begin()
	heap += 10
	b := l.begin()
	heap += 20
	if got := l.end(b); got != 10 {
		t.Errorf("b ran beside a while 20 bytes were allocated: its part is %v, want 10", got)
	}
	heap += 5
	if got := l.end(a); got != 25 {
		t.Errorf("a's part is %v, want 10 + 20/2 + 5 = 25", got)
	}
	heap += 100 // nobody running: nobody's
	if got := l.end(l.begin()); got != 0 {
		t.Errorf("a turn that saw no allocation has part %v", got)
	}
}

// A chunk whose quantum is up is charged then, gives its slot up, and
// waits out its debt before it queues for a slot again.
func TestCPUShareChargedChunkWaitsWithoutItsSlot(t *testing.T) {
	cs, heap, newTurn, charged := shareWithBudget(t)
	cs.quantum = time.Millisecond
	cs.budget = &allocBudget{rate: 1 << 30, burst: 0} // 1 GiB/s, no burst
	cs.contended.Store(time.Now().UnixNano())
	var cost chunkCost
	a := newTurn(&cost)
	a.Run(context.Background())
	heap.Add(16 << 20) // 16 ms at 1 GiB/s
	start := a.since
	for time.Since(start) < 2*cs.quantum { // bounded: the quantum is 1 ms
	}
	cs.contended.Store(time.Now().UnixNano())
	a.Run(context.Background())
	select {
	case d := <-charged:
		if d <= 0 || d > 16*time.Millisecond {
			t.Errorf("charged %v for 16 MiB at 1 GiB/s", d)
		}
	default:
		t.Fatal("not charged at the end of its quantum")
	}
	if !a.held {
		t.Fatal("the chunk has no slot after its wait")
	}
	if waited := time.Since(start); waited < 15*time.Millisecond {
		t.Errorf("the chunk ran again after %v, before its 16 ms debt was paid", waited)
	}
	a.Release()
}

// A chunk cancelled while its session waits out an allocation pause, at
// its start, says that is what it waited for, not a turn on the CPU; a
// chunk that was not paused says nothing.
func TestCancelledInAPauseSaysSo(t *testing.T) {
	_, _, newTurn, _ := shareWithBudget(t)
	var cost chunkCost
	cost.notBefore.Store(time.Now().Add(time.Minute).UnixNano())
	a := newTurn(&cost)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	cancel()
	<-done
	if a.held {
		t.Fatal("the paused chunk took a slot")
	}
	if w := a.Waiting(); !strings.Contains(w, "--alloc-rate") {
		t.Fatalf("Waiting() = %q, want the allocation pause", w)
	}
	b := newTurn(&chunkCost{})
	b.Run(context.Background())
	defer b.Release()
	if w := b.Waiting(); w != "" {
		t.Fatalf("a chunk never paused: Waiting() = %q", w)
	}
}
