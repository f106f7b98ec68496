package server

import (
	"context"
	"math"
	"os"
	"runtime"
	"sync"
	"time"
)

// cpuShare gives running chunks turns on the CPU, fairly between sessions.
//
// At most slots chunks (one per P) run at once; the others wait, parked, in
// a queue ordered by how much CPU their sessions used lately, so a session
// that asks for little is served before the ones that keep the CPU busy. A
// chunk that has held its slot for a quantum hands it on, and a contended
// slot always goes on through the network poller: the chunk queues up
// again, writes a byte to a pipe and parks, and the goroutine reading the
// pipe hands the slot to the first in the queue. The Go scheduler polls the
// network only when its run queues are empty; with chunks that never block
// always runnable, a quiet client's request, or a cancel, waited for the
// runtime's monitor thread to poll, every 10 ms (measured beside four
// sessions' infinite loops on one CPU: the healthy client's median went
// from 91 µs to 10 ms). With every other chunk parked, the poll that wakes
// the pipe's reader also wakes each connection with a request waiting, and
// their chunks queue up before the slot is handed on.
type cpuShare struct {
	slots   int
	quantum time.Duration
	r, w    *os.File // the pipe a contended slot goes through

	mu    sync.Mutex
	held  int     // slots held, or on their way through the pipe
	queue []*turn // waiting chunks, least recent use of the CPU first

	queued func() // tests: called when a chunk has queued
}

// usageHalfLife is how fast a session's use of the CPU is forgotten.
const usageHalfLife = time.Second

func newCPUShare(slots int) (*cpuShare, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &cpuShare{slots: max(slots, 1), quantum: 250 * time.Microsecond, r: r, w: w}, nil
}

// cpuUse is a session's recent use of the CPU: seconds, decaying with
// usageHalfLife. Guarded by the cpuShare's mu.
type cpuUse struct {
	secs float64
	at   time.Time
}

func (u *cpuUse) now(t time.Time) float64 {
	if u.at.IsZero() {
		return 0
	}
	return u.secs * math.Exp2(-float64(t.Sub(u.at))/float64(usageHalfLife))
}

func (u *cpuUse) add(d time.Duration, t time.Time) {
	u.secs = u.now(t) + d.Seconds()
	u.at = t
}

// pass runs until the pipe is closed: each byte read hands a slot to the
// first waiter. It first lets the goroutines woken with it by the same poll
// run, so that their chunks join the queue: the waiter it wakes would run
// next, ahead of them.
func (cs *cpuShare) pass() {
	defer cs.r.Close()
	buf := make([]byte, 64)
	for {
		n, err := cs.r.Read(buf)
		if n > 0 {
			runtime.Gosched()
		}
		for range n {
			cs.mu.Lock()
			cs.handOn()
			cs.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// close ends pass, or closes the pipe if pass never ran. Chunks still
// waiting are stopped by their contexts.
func (cs *cpuShare) close(passing bool) {
	cs.w.Close()
	if !passing {
		cs.r.Close()
	}
}

// turn is one chunk's place in the cpuShare; it implements session.CPU and
// is used only by the chunk's goroutine.
type turn struct {
	cs    *cpuShare
	use   *cpuUse // the session's
	held  bool
	since time.Time // when the slot was taken

	granted bool          // guarded by cs.mu: handed a slot while queued
	ready   chan struct{} // closed when granted
}

func (cs *cpuShare) turn(use *cpuUse) *turn { return &turn{cs: cs, use: use} }

// Run is called when a chunk starts and at every tick. It returns at once
// while the chunk holds its slot for less than a quantum, or takes a free
// slot; otherwise the chunk waits, parked, for a slot, or for ctx.
func (t *turn) Run(ctx context.Context) {
	cs := t.cs
	if t.held && time.Since(t.since) < cs.quantum {
		return
	}
	now := time.Now()
	cs.mu.Lock()
	if t.held && len(cs.queue) == 0 && cs.held < cs.slots {
		// Nobody waits and a P runs no chunk: it reads the network.
		t.use.add(now.Sub(t.since), now)
		cs.mu.Unlock()
		t.since = now
		return
	}
	if t.held {
		// A quantum is up and every slot is busy: through the poller,
		// even with nobody queued, so that requests not yet read get
		// their turn.
		t.held = false
		t.use.add(now.Sub(t.since), now)
		t.enqueue(now)
		cs.mu.Unlock()
		cs.passOn()
	} else {
		if cs.held < cs.slots {
			cs.held++
			cs.mu.Unlock()
			t.take(now)
			return
		}
		t.enqueue(now)
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
// or it ended.
func (t *turn) Release() {
	if !t.held {
		return
	}
	t.held = false
	cs := t.cs
	now := time.Now()
	cs.mu.Lock()
	t.use.add(now.Sub(t.since), now)
	if len(cs.queue) == 0 {
		cs.held--
		cs.mu.Unlock()
		return
	}
	cs.mu.Unlock()
	cs.passOn()
}

func (t *turn) take(now time.Time) {
	t.held = true
	t.since = now
}

// enqueue puts t in the queue behind the sessions that used the CPU less
// lately. Needs cs.mu.
func (t *turn) enqueue(now time.Time) {
	t.granted = false
	t.ready = make(chan struct{})
	q := t.cs.queue
	mine := t.use.now(now)
	i := len(q)
	for i > 0 && q[i-1].use.now(now) > mine {
		i--
	}
	q = append(q, nil)
	copy(q[i+1:], q[i:])
	q[i] = t
	t.cs.queue = q
}

// passOn sends a held slot through the pipe to pass.
func (cs *cpuShare) passOn() {
	if _, err := cs.w.Write([]byte{0}); err != nil {
		cs.mu.Lock()
		cs.handOn() // the server is closing: hand it on here
		cs.mu.Unlock()
	}
}

// handOn gives a held slot to the first waiter, or frees it. Needs cs.mu.
func (cs *cpuShare) handOn() {
	if len(cs.queue) == 0 {
		cs.held--
		return
	}
	w := cs.queue[0]
	cs.queue[0] = nil
	cs.queue = cs.queue[1:]
	w.granted = true
	close(w.ready)
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
