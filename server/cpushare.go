package server

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// cpuShare gives running chunks turns on the CPU, short work first.
//
// At most slots chunks (one per P) run at once; the others wait, parked.
// A free slot goes to the waiter whose session's chunks have lately been
// the shortest, less an eighth of the time it has waited (waitWeight): an
// interactive session is served before the ones that keep the CPU busy,
// and no chunk waits forever.
//
// A chunk that has held its slot for a quantum while every slot is busy
// hands it on through the network poller: it queues up again, writes a
// byte to a pipe and parks, and the goroutine reading the pipe hands the
// slot on. The Go scheduler polls the network only when its run queues are
// empty; with chunks that never block always runnable, a quiet client's
// request, or a cancel, waited for the runtime's monitor thread to poll,
// every 10 ms (measured beside four sessions' infinite loops on one CPU:
// the healthy client's median went from 91 µs to 10 ms). With every chunk
// parked, the poll that wakes the pipe's reader also wakes each connection
// with a request waiting, and their chunks queue up before the slot is
// handed on. When other goroutines keep the run queue busy (a storm of
// connections), the pipe is read late; a chunk that arrives a quantum
// after the slot was sent hands it on itself.
//
// A slot goes from a chunk straight to a short waiter, with no poll in
// between, only within a quantum of the last poll: sessions that keep
// sending short chunks back to back (a runaway recursion stopped at the
// depth limit, again and again) would otherwise pass the slot among
// themselves while a quiet client's request waited unread until they all
// paused (its median went from 42 µs to 1 ms).
//
// While chunks have lately had to wait for a slot (within contendedFor),
// the quantum is contendedQuantum, not quantum: a chunk that builds a huge
// value, or a busy loop, then makes the quiet client's request wait
// 0.1 ms, not 0.25 ms, at each turn (the healthy client's p99 beside
// 64 MiB allocations, one CPU: 0.77–0.92 → 0.41–0.45 ms). A pass through
// the pipe costs a chunk alone on the CPU about 6% at the short quantum,
// so it keeps the long one.
//
// While chunks compete, a session whose chunk allocated past the server's
// budget waits, holding no slot, before its next turn (allocbudget.go).
type cpuShare struct {
	slots   int
	quantum time.Duration
	r, w    *os.File // the pipe a contended slot goes through

	contended atomic.Int64  // unix nanoseconds: when a chunk last had to wait for a slot
	aside     chan struct{} // holds a token while a chunk is aside (StepAside): one at a time
	competing func()        // called when a chunk has to wait after none had for contendedFor (gcpace.go)

	budget *allocBudget // nil: allocation is not charged (allocbudget.go)
	ledger allocLedger

	od overdue // chunks silent too long while others wait (overdue.go); guarded by mu

	mu      sync.Mutex
	held    int       // slots held, or on their way through the pipe
	transit int       // slots on their way through the pipe
	sent    time.Time // when the oldest of those was sent
	polled  time.Time // when a slot last came through the pipe, or went free
	queue   []*turn   // waiting chunks

	queued func() // tests: called when a chunk has queued
	passed func() // tests: called when pass has handed slots on
	ceded  func() // tests: called instead of cedeCPU
}

// cede gives the CPU to any thread the kernel queued behind the chunk's,
// at each quantum of a chunk that runs with a slot to spare. The kernel
// puts a thread it wakes (the server's network poller with a cancel, or a
// client on the same machine) on either CPU, and one put behind a busy
// chunk waited for the chunk's slice to end or for the next scheduler
// tick: 4 ms at 250 Hz. Measured with two CPUs, 200 cancels of a busy
// loop per run, three runs each way: a worst case of 4.35-5.86 ms and a
// p99 of 2.79-4.15 ms before, 1.18-1.69 ms and 0.92-1.03 ms after, the
// median unchanged (0.58-0.62 ms).
func (cs *cpuShare) cede() {
	if cs.ceded != nil {
		cs.ceded()
		return
	}
	cedeCPU()
}

const (
	contendedQuantum = 100 * time.Microsecond
	contendedFor     = 100 * time.Millisecond
)

// quantumAt is the quantum in force at now.
func (cs *cpuShare) quantumAt(now time.Time) time.Duration {
	if cs.waitedWithin(now, contendedFor) {
		return min(cs.quantum, contendedQuantum)
	}
	return cs.quantum
}

// waitedWithin says a chunk had to wait for a slot within d before now.
func (cs *cpuShare) waitedWithin(now time.Time, d time.Duration) bool {
	return now.UnixNano()-cs.contended.Load() < int64(d)
}

// calm says no chunk has had to wait for a slot for d.
func (cs *cpuShare) calm(d time.Duration) bool { return !cs.waitedWithin(time.Now(), d) }

func newCPUShare(slots int) (*cpuShare, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &cpuShare{slots: max(slots, 1), quantum: 250 * time.Microsecond, r: r, w: w, aside: make(chan struct{}, 1), ledger: allocLedger{read: allocated}}, nil
}

// chunkCost is a session's estimate of its chunks' CPU time: a moving
// average, a new session's taken as newSessionCost. Guarded by the
// cpuShare's mu.
type chunkCost struct {
	avg  time.Duration
	seen bool

	notBefore atomic.Int64 // unix nanoseconds: the session's chunks wait for this (allocbudget.go); not guarded
}

// newSessionCost is what a session's first chunk is expected to cost: more
// than an interactive session's, so a burst of new sessions waits behind
// the clients already at work, less than a busy loop's.
const newSessionCost = time.Millisecond

func (c *chunkCost) estimate() time.Duration {
	if !c.seen {
		return newSessionCost
	}
	return c.avg
}

func (c *chunkCost) add(d time.Duration) {
	if !c.seen {
		c.avg, c.seen = d, true
		return
	}
	c.avg += (d - c.avg) / 4
}

// pass runs until the pipe is closed: each byte read hands a slot on. It
// first lets the goroutines woken with it by the same poll run, so that
// their chunks join the queue: the waiter it wakes would run next, ahead
// of them.
func (cs *cpuShare) pass() {
	defer cs.r.Close()
	buf := make([]byte, 64)
	for {
		n, err := cs.r.Read(buf)
		if n > 0 {
			runtime.Gosched()
		}
		cs.mu.Lock()
		cs.polled = time.Now()
		for range n {
			if cs.transit > 0 { // else a chunk that arrived handed it on
				cs.transit--
				cs.handOn()
			}
		}
		cs.mu.Unlock()
		if n > 0 && cs.passed != nil {
			cs.passed()
		}
		if err != nil {
			return
		}
	}
}

// close ends pass, or closes the pipe if pass never ran. Chunks still
// waiting are stopped by their contexts.
func (cs *cpuShare) close(passing bool) {
	cs.stopWatch()
	cs.w.Close()
	if !passing {
		cs.r.Close()
	}
}

// turn is one chunk's place in the cpuShare; it implements session.CPU and
// is used only by the chunk's goroutine.
type turn struct {
	cs    *cpuShare
	cost  *chunkCost // the session's
	held  bool
	aside bool          // stepped aside, not back yet
	since time.Time     // when the slot was taken
	spent time.Duration // CPU turns this chunk has had, before since

	paused   time.Duration // how long this chunk waited for its session's allocation (allocbudget.go)
	stopped  bool          // ctx ended that wait
	measured bool          // the turn's allocation is measured
	shareAt  float64       // cs.ledger's share when the slot was taken
	takenAt  time.Time     // when it was
	// charged, if set, is told when the session is charged a wait
	// for bytes it allocated (allocbudget.go).
	charged func(bytes uint64, wait time.Duration)

	queuedAt time.Time     // guarded by cs.mu
	granted  bool          // guarded by cs.mu: handed a slot while queued
	ready    chan struct{} // closed when granted

	watch turnWatch // overdue.go
}

func (cs *cpuShare) turn(cost *chunkCost) *turn { return &turn{cs: cs, cost: cost} }

// Run is called when a chunk starts and at every tick. It returns at once
// while the chunk holds its slot for less than a quantum, or takes a free
// slot; otherwise the chunk waits, parked, for a slot, or for ctx.
func (t *turn) Run(ctx context.Context) {
	cs := t.cs
	t.back()
	now := time.Now()
	if t.held {
		t.watch.tick.Store(now.UnixNano())
		if now.Sub(t.since) < cs.quantumAt(now) {
			return
		}
	}
	if t.held && t.charge(now) {
		// It allocated more than the budget covers: the session waits
		// (below) without its slot.
		t.Release()
	}
	if !t.held {
		if d := t.debt(now); d > 0 {
			if !sleepCtx(ctx, d) {
				t.stopped = true
				return
			}
			t.paused += d
			now = time.Now()
		}
	}
	cs.mu.Lock()
	if t.held && t.lost() {
		// Its slot was given on while it was silent (overdue.go).
		t.held = false
		t.spent += now.Sub(t.since)
	}
	if t.held && len(cs.queue) == 0 && cs.held < cs.slots {
		// Nobody waits and a P runs no chunk: that P reads the network.
		// The kernel may still have queued a thread behind this one on
		// its CPU (see cede).
		cs.mu.Unlock()
		t.spent += now.Sub(t.since)
		t.since = now
		cs.cede()
		return
	}
	if t.held {
		// A quantum is up and every slot is busy: through the poller,
		// even with nobody queued, so that requests not yet read get
		// their turn.
		t.held = false
		t.spent += now.Sub(t.since)
		cs.unhold(t)
		t.enqueue(now)
		viaPipe := cs.release(now)
		cs.mu.Unlock()
		if viaPipe {
			cs.yieldOn()
		}
	} else {
		if cs.held < cs.slots && len(cs.queue) == 0 && (!cs.busyWith(1) || t.short()) {
			cs.held++
			cs.hold(t, now)
			cs.mu.Unlock()
			t.take(now)
			return
		}
		t.enqueue(now)
		if cs.held < cs.slots && (!cs.busyWith(1) || cs.shortWaiter(now) >= 0) {
			// A slot is free, kept from long waiters while a chunk whose
			// slot was given on still runs (overdue.go).
			cs.held++
			cs.handOn()
		}
		cs.watchOverdue()
		if prev := cs.contended.Swap(now.UnixNano()); now.UnixNano()-prev >= int64(contendedFor) && cs.competing != nil {
			cs.competing()
		}
		if cs.transit > 0 && (t.short() || now.Sub(cs.sent) > cs.quantum) {
			// This chunk was read from the network, and is short, or
			// the pipe is read late: hand the slot on from here.
			cs.transit--
			cs.handOn()
		}
		cs.mu.Unlock()
	}
	if cs.queued != nil {
		cs.queued()
	}
	select {
	case <-t.ready:
		t.take(time.Now())
	case <-ctx.Done():
		cs.mu.Lock()
		granted := t.granted
		if !granted {
			cs.dequeue(t)
		}
		cs.mu.Unlock()
		if granted {
			t.take(time.Now()) // given on by Release when the chunk ends
		}
	}
}

// Release gives the slot on, if the chunk holds one: it is about to block,
// or it ended. With chunks waiting, it goes through the poller too.
func (t *turn) Release() {
	t.back()
	if !t.held {
		return
	}
	now := time.Now()
	t.drop(now)
	cs := t.cs
	cs.mu.Lock()
	if t.lost() {
		cs.mu.Unlock()
		return
	}
	cs.unhold(t)
	viaPipe := cs.release(now)
	cs.mu.Unlock()
	if viaPipe {
		cs.sendOn()
	}
}

// drop ends the chunk's hold on its slot, charging the turn; the caller
// passes the slot on.
func (t *turn) drop(now time.Time) {
	t.charge(now)
	t.held = false
	t.spent += now.Sub(t.since)
}

// StepAside gives the slot up before work the chunk cannot break into
// turns: the runtime zeroing a big block it allocates, page-faulting
// through fresh memory (~0.2 s for 64 MiB here), and the collector's
// assist charged for it, which Go preempts only every 10-20 ms. A trace:
// a quiet client's `1+1` waited 204 ms behind one such block.
//
// The slot goes straight to the waiter that would get it next, which runs
// first: through the pipe, it would wait for that preemption and a poll of
// the network after it. One chunk at a time is aside: the others wait for
// it to come back, parked, before their own big blocks. With each allowed
// in, four sessions building 64 MiB lists filled the run queue with such
// work, 15-20 ms a turn each, and a request read from the network waited
// behind all of them (91 ms). The others' slots still go through the pipe
// meanwhile: handed on straight, from one to the next, they kept the
// network from being polled (a chunk readied by another inherits its time
// slice, and the runtime looks at its global run queue only between time
// slices), and a request waited 60 ms unread. The next tick takes a turn
// again. A chunk whose ctx ends while it waits goes on without
// stepping aside; its next tick stops it.
func (t *turn) StepAside(ctx context.Context) {
	cs := t.cs
	if t.held {
		t.drop(time.Now())
		cs.mu.Lock()
		waiter := false
		if !t.lost() {
			waiter = len(cs.queue) > 0
			cs.unhold(t)
			cs.handOn()
		}
		cs.mu.Unlock()
		if waiter {
			runtime.Gosched()
		}
	}
	if t.aside {
		return
	}
	select {
	case cs.aside <- struct{}{}:
		t.aside = true
	case <-ctx.Done():
		return
	}
	// What it allocates aside is charged as a turn's would be.
	now := time.Now()
	t.takenAt = now
	t.measured = cs.budget != nil && cs.waitedWithin(now, chargeFor)
	if t.measured {
		t.shareAt = cs.ledger.begin()
	}
}

// back says the chunk is back from stepping aside, and charges its
// session for what it allocated there.
func (t *turn) back() {
	if t.aside {
		t.charge(time.Now())
		t.aside = false
		<-t.cs.aside
	}
}

// release gives up a held slot: freed when nobody waits, handed at once to
// a short chunk if the network was polled within a quantum, else sent
// through the pipe, so that requests not yet read join the queue before
// the slot is given (the caller then calls yieldOn or sendOn). Needs cs.mu.
func (cs *cpuShare) release(now time.Time) (viaPipe bool) {
	switch {
	case len(cs.queue) == 0:
		cs.held--
		cs.polled = now // the run queue may empty: the scheduler polls
		return false
	case now.Sub(cs.polled) < cs.quantum && cs.queue[cs.best(now)].short():
		cs.handOn()
		return false
	}
	if cs.transit == 0 {
		cs.sent = now
	}
	cs.transit++
	return true
}

// short says the chunk is expected to give the slot back within a quantum.
// Needs cs.mu.
func (t *turn) short() bool {
	return max(t.cost.estimate(), t.spent) <= t.cs.quantum
}

// done records what the ended chunk cost in its session's estimate.
func (t *turn) done() {
	t.cs.mu.Lock()
	t.cost.add(t.spent)
	t.cs.mu.Unlock()
}

func (t *turn) take(now time.Time) {
	t.held = true
	t.since = now
	t.takenAt = now
	cs := t.cs
	t.measured = cs.budget != nil && cs.waitedWithin(now, chargeFor)
	if t.measured {
		t.shareAt = cs.ledger.begin()
	}
}

// charge ends a measured turn: it charges the session for its share of
// what the process allocated during the turn, if the turn lasted
// minChargedTurn, and says whether the session must now wait (debt).
func (t *turn) charge(now time.Time) bool {
	if !t.measured {
		return false
	}
	t.measured = false
	cs := t.cs
	n := uint64(cs.ledger.end(t.shareAt))
	if now.Sub(t.takenAt) < minChargedTurn {
		return false
	}
	if n < minCharge {
		return false
	}
	until := cs.budget.charge(n, now).UnixNano()
	if until <= now.UnixNano() {
		return false
	}
	t.cost.notBefore.Store(max(until, t.cost.notBefore.Load()))
	if t.charged != nil {
		t.charged(n, time.Duration(until-now.UnixNano()))
	}
	return true
}

// Waiting says what the chunk was waiting for when its context ended Run:
// its session's allocation pause, or "" (a turn on the CPU).
func (t *turn) Waiting() string {
	if t.stopped {
		return "the end of its session's pause (the session allocated more than the server's --alloc-rate while other sessions' chunks competed for the CPU)"
	}
	return ""
}

// debt is how long the session must still wait, holding no slot, after
// what it allocated.
func (t *turn) debt(now time.Time) time.Duration {
	return time.Duration(t.cost.notBefore.Load() - now.UnixNano())
}

// sleepCtx waits for d, or until ctx is done: then it says false.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// enqueue puts t in the queue. Needs cs.mu.
func (t *turn) enqueue(now time.Time) {
	t.granted = false
	t.ready = make(chan struct{})
	t.queuedAt = now
	t.cs.queue = append(t.cs.queue, t)
}

// waitWeight is how much less a waiter's wait counts than its expected
// cost. At 1, sessions that kept the CPU busy with half-millisecond chunks
// (a runaway recursion stopped at the depth limit, four at a time) had
// each waited longer than their cost by the time a quiet client's `1+1`
// arrived, and went first: its median rose from 42 µs to 1 ms. At 8, a
// chunk expected to take 0.5 ms goes before a 20 µs one after waiting
// 4 ms; a long chunk still gets a turn, at least an eighth of the CPU
// beside any number of short ones.
const waitWeight = 8

// key orders the waiters: the expected cost of the chunk's work, less
// its wait, weighted. Needs cs.mu.
func (t *turn) key(now time.Time) time.Duration {
	return max(t.cost.estimate(), t.spent) - now.Sub(t.queuedAt)/waitWeight
}

// yieldOn lets what is runnable run first, the pipe's reader among them
// (it must be parked in the poller when the byte arrives, or it would hand
// the slot on with no poll in between), then sends the slot. Only a chunk
// whose quantum is up does that: one that ended still has its answer to
// write, and would wait behind the whole run queue.
func (cs *cpuShare) yieldOn() {
	runtime.Gosched()
	cs.sendOn()
}

// sendOn sends a slot in transit through the pipe to pass.
func (cs *cpuShare) sendOn() {
	if _, err := cs.w.Write([]byte{0}); err != nil {
		cs.mu.Lock()
		if cs.transit > 0 { // the server is closing: hand it on here
			cs.transit--
			cs.handOn()
		}
		cs.mu.Unlock()
	}
}

// handOn gives a held slot to the waiter with the smallest key, or frees
// it. Needs cs.mu.
func (cs *cpuShare) handOn() {
	if len(cs.queue) == 0 {
		cs.held--
		return
	}
	now := time.Now()
	best := cs.best(now)
	if cs.busy() && !cs.queue[best].short() {
		if best = cs.shortWaiter(now); best < 0 {
			cs.held-- // lost() hands it on
			return
		}
	}
	w := cs.queue[best]
	cs.queue = append(cs.queue[:best], cs.queue[best+1:]...)
	w.granted = true
	close(w.ready)
	cs.hold(w, now)
}

// best is the index of the waiter with the smallest key. Needs cs.mu and
// a waiter.
func (cs *cpuShare) best(now time.Time) int {
	b := 0
	for i := 1; i < len(cs.queue); i++ {
		if cs.queue[i].key(now) < cs.queue[b].key(now) {
			b = i
		}
	}
	return b
}

// dequeue removes a waiter that gave up. Needs cs.mu.
func (cs *cpuShare) dequeue(t *turn) {
	for i, w := range cs.queue {
		if w == t {
			cs.queue = append(cs.queue[:i], cs.queue[i+1:]...)
			return
		}
	}
}
