package server

import (
	"sync/atomic"
	"time"
)

// overdueAfter is how long a chunk may hold its slot without a tick while
// a short chunk waits. The interpreter ticks every 1,000-4,096 steps, well
// under a millisecond, and so do the built-ins the starlark patch makes
// count their elements; a chunk silent for longer is inside one call that
// does not: formatting a huge list with `%`, `upper()` of a 64 MiB
// string, or the collector's assist for what it allocated. Such a call
// held the slot, and every other client, for 0.4-2 s (bench/RESULTS.md,
// item 67).
const overdueAfter = 20 * time.Millisecond

// overdue is the cpuShare's watch on the chunks holding slots. Guarded by
// the cpuShare's mu.
type overdue struct {
	holding     []*turn     // the turns holding a slot
	outstanding int         // chunks whose slot was given on, not back at a tick yet
	watching    bool        // timer armed
	timer       *time.Timer // runs revokeOverdue
	revoked     int         // slots given on from overdue chunks, for tests
}

// turnWatch is a turn's part of the watch.
type turnWatch struct {
	tick    atomic.Int64 // unix nanoseconds: the chunk's last tick holding its slot
	revoked atomic.Bool  // its slot was given on; set under cs.mu
}

// hold records that t now holds a slot. Needs cs.mu.
func (cs *cpuShare) hold(t *turn, now time.Time) {
	t.watch.tick.Store(now.UnixNano())
	cs.od.holding = append(cs.od.holding, t)
	if len(cs.queue) > 0 {
		cs.watchOverdue()
	}
}

// unhold records that t gave its slot up. Needs cs.mu.
func (cs *cpuShare) unhold(t *turn) {
	for i, h := range cs.od.holding {
		if h == t {
			cs.od.holding = append(cs.od.holding[:i], cs.od.holding[i+1:]...)
			return
		}
	}
}

// lost says, clearing it, that t's slot was given on while the chunk was
// silent: it holds none now, and must not give one up. The CPU it was
// using is free again: a long waiter may have a slot now. Needs cs.mu.
func (t *turn) lost() bool {
	if !t.watch.revoked.Swap(false) {
		return false
	}
	cs := t.cs
	cs.od.outstanding--
	for cs.held+cs.od.outstanding < cs.slots && len(cs.queue) > 0 {
		cs.held++
		cs.handOn()
	}
	return true
}

// busy says the CPU a slot stands for is still in use by a chunk whose
// slot was given on: the slot may go to a short waiter only. Needs cs.mu
// and the slot counted in held.
func (cs *cpuShare) busy() bool { return cs.busyWith(0) }

// busyWith says the same with n more slots held.
func (cs *cpuShare) busyWith(n int) bool { return cs.held+n+cs.od.outstanding > cs.slots }

// shortWaiter is the index of the short waiter with the smallest key, or
// -1. Needs cs.mu.
func (cs *cpuShare) shortWaiter(now time.Time) int {
	b := -1
	for i, w := range cs.queue {
		if w.short() && (b < 0 || w.key(now) < cs.queue[b].key(now)) {
			b = i
		}
	}
	return b
}

// watchOverdue arms the timer, if it is not, while chunks wait and others
// hold slots. Needs cs.mu.
func (cs *cpuShare) watchOverdue() {
	if cs.od.watching || len(cs.od.holding) == 0 {
		return
	}
	cs.od.watching = true
	if cs.od.timer == nil {
		cs.od.timer = time.AfterFunc(overdueAfter, cs.revokeOverdue)
		return
	}
	cs.od.timer.Reset(overdueAfter)
}

// revokeOverdue gives the slot of each chunk silent for overdueAfter to
// a short waiter: a quiet client's request. The chunk runs on beside it,
// as any goroutine does, and queues again at its next tick; until then
// the slot goes from one short chunk to the next, or stays free, never to
// a long one. Handed to any waiter, the slot went from one session's huge
// call to the next, each running on when its slot was given on: four
// sessions' `split` of 16 MiB strings all ran at once, and a quiet
// client's `1+1` waited its turn behind each (median 70 ms). On one CPU
// the timer fires when the Go runtime preempts the silent chunk, every
// 10-20 ms: that, not the chunk's whole call, is what the quiet client
// waits.
func (cs *cpuShare) revokeOverdue() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.od.watching = false
	nowT := time.Now()
	now := nowT.UnixNano()
	for i := 0; i < len(cs.od.holding) && cs.shortWaiter(nowT) >= 0; {
		t := cs.od.holding[i]
		if now-t.watch.tick.Load() < int64(overdueAfter) {
			i++
			continue
		}
		cs.od.holding = append(cs.od.holding[:i], cs.od.holding[i+1:]...)
		t.watch.revoked.Store(true)
		cs.od.revoked++
		cs.od.outstanding++
		cs.handOn()
	}
	if len(cs.queue) > 0 {
		cs.watchOverdue()
	}
}

// stopWatch stops the timer when the server closes.
func (cs *cpuShare) stopWatch() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.od.timer != nil {
		cs.od.timer.Stop()
	}
	cs.od.watching = true // never armed again
}
