package server

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultGCHeadroom is `rshell serve`'s --gc-headroom.
const DefaultGCHeadroom = 128 << 20

// While running chunks compete for the CPU, the collector may let the
// heap grow by Config.GCHeadroom between cycles, instead of by as much as
// was live after the last one (Go's default, GOGC=100).
//
// A server whose live data is a few MiB collects every few MiB allocated:
// every ~36 ms beside four sessions' runaway recursions. Each cycle's
// marking takes a quarter of a CPU in slices of up to several ms that no
// goroutine can cut short, and walks every deep goroutine stack; a quiet
// client's request that arrives in a slice waits for it. With 128 MiB of
// headroom the cycles come an order of magnitude less often. A cycle that
// begins while big values are live also has to mark them (a 64 MiB list
// of ints: ~20 ms of CPU), so the headroom is twice the biggest value the
// adversarial suite builds: with 64 MiB, each of its lists began a cycle.
//
// Only while chunks compete: the headroom is memory the allocator walks
// through between cycles, and after an idle server has given its memory
// back (quiet.go) every page of it faults on first use, ~11 µs a page on
// a VM; a fresh connection then cost ~0.3 ms more (held all the time, the
// headroom made connect_first_eval 1.6–1.9 → 2.0–2.4 ms). Competition is what
// the cpuShare sees: a chunk had to wait for a CPU slot. The goal goes
// back to the process's own GOGC after gcCalm without that.
//
// Measured on one CPU (rshell-bench, alternating runs), the quiet
// client's p99 against its baseline: beside four sessions' runaway
// recursions, 11.3–15.8× with Go's default pacing, 4.2–4.6× with 128 MiB
// of headroom; beside four sessions cycling through hostile chunks, 11.0×,
// 15.4×, 3.2×, 14.3× against 3.7×, 2.9×, 3.2×, 3.7× (an earlier form of
// the goal, the larger of Go's and live + headroom: 8.5× and 10.1× with
// Go's default, 12.1× and 10.9× with 64 MiB, 2.7× and 3.0× with 128 MiB,
// 2.9× and 2.3× with 256 MiB). Part of the gain is that an
// allocating chunk now pays for more page faults itself, inside its own
// turns, where it paid for collections that everyone waited behind: the
// attacks run slower. When the server has free memory resident (after
// other big values) the hostile chunks run at full speed, ~1 GiB/s of
// 64 MiB lists, and the p99 is 8–16× either way.
//
// GOGC is process-wide: with two servers in one process, the first to
// see competition sets it, and it goes back when neither has for gcCalm.
type gcPacer struct {
	headroom uint64
	kick     chan struct{} // competition began: a send that never blocks
	live     func() uint64 // the live heap: heapLive, or a test's
	paced    func(int)     // tests: called with each GOGC set
}

const (
	gcRecheck = 100 * time.Millisecond // how often the goal is reworked while raised
	gcCalm    = time.Second            // without competition this long, Go's default again
	maxGCPct  = 10000
)

func newGCPacer(headroom int64) *gcPacer {
	if headroom <= 0 {
		return nil
	}
	return &gcPacer{headroom: uint64(headroom), kick: make(chan struct{}, 1), live: heapLive}
}

// competing tells the pacer that a chunk had to wait for a CPU slot after
// none had for a while. Nil-safe; it never blocks.
func (p *gcPacer) competing() {
	if p == nil {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// gcRaised is the process-wide state of GOGC: how many pacers hold it
// raised, and what it was before the first did.
var gcRaised struct {
	mu   sync.Mutex
	n    int
	base int
}

// loop raises the goal each time competition begins, until ctx is done;
// calm reports whether the server's chunks have stopped competing.
func (p *gcPacer) loop(ctx context.Context, calm func(time.Duration) bool) {
	for {
		select {
		case <-p.kick:
		case <-ctx.Done():
			return
		}
		p.raise(ctx, calm)
	}
}

func (p *gcPacer) raise(ctx context.Context, calm func(time.Duration) bool) {
	gcRaised.mu.Lock()
	if gcRaised.n == 0 {
		gcRaised.base = gogc()
	}
	gcRaised.n++
	base := gcRaised.base
	gcRaised.mu.Unlock()
	defer func() {
		gcRaised.mu.Lock()
		gcRaised.n--
		if gcRaised.n == 0 && base > 0 {
			p.set(base)
		}
		gcRaised.mu.Unlock()
	}()
	if base <= 0 {
		return // GOGC=off, or 0: the operator's choice stands
	}
	t := time.NewTicker(gcRecheck)
	defer t.Stop()
	last := 0
	for {
		// The goal is live × (1 + pct/100): Go's default (GOGC=100:
		// twice the live heap) plus the headroom. Reworked as the live
		// heap changes, so a raise made when it was small does not
		// multiply a big one.
		pct := raisedPct(base, p.headroom, p.live())
		if pct != last {
			gcRaised.mu.Lock()
			p.set(pct)
			gcRaised.mu.Unlock()
			last = pct
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if calm(gcCalm) {
			return
		}
	}
}

// raisedPct is the GOGC that lets a heap with live bytes live grow by
// headroom more than base does.
func raisedPct(base int, headroom, live uint64) int {
	return min(base+int(100*headroom/max(live, 1<<20)), maxGCPct)
}

// set sets GOGC. Needs gcRaised.mu.
func (p *gcPacer) set(pct int) {
	debug.SetGCPercent(pct)
	if p.paced != nil {
		p.paced(pct)
	}
}

// gogc is the process's GOGC: negative when off.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(int32(s[0].Value.Uint64()))
}

// heapLive is the heap marked live by the last collection.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
