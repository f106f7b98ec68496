package server

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A chunk that has to wait for a slot, after none had for contendedFor,
// tells the pacer; the ones that queue right after it do not.
func TestCPUShareReportsCompetitionOnce(t *testing.T) {
	cs := startShare(t, 1, time.Hour)
	queued := queuedSignal(cs)
	var told atomic.Int32
	cs.competing = func() { told.Add(1) }
	var hc chunkCost
	h := cs.turn(&hc)
	h.Run(context.Background())
	if !cs.calm(time.Second) {
		t.Fatal("not calm before any chunk waited")
	}
	var wg sync.WaitGroup
	waiters := make([]*turn, 3)
	for i := range waiters {
		waiters[i] = cs.turn(&chunkCost{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			waiters[i].Run(context.Background())
			waiters[i].Release()
		}()
		<-queued
	}
	if n := told.Load(); n != 1 {
		t.Errorf("the pacer was told %d times for one spell of competition, want 1", n)
	}
	if cs.calm(time.Second) {
		t.Error("calm while chunks wait")
	}
	h.Release()
	wg.Wait()
}

// runPacer runs p's loop until the test ends; calm is what the loop sees.
func runPacer(t *testing.T, p *gcPacer, calm *atomic.Bool) <-chan int {
	t.Helper()
	set := make(chan int, 16)
	p.paced = func(pct int) { set <- pct }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.loop(ctx, func(time.Duration) bool { return calm.Load() })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return set
}

func recvPct(t *testing.T, set <-chan int) int {
	t.Helper()
	select {
	case pct := <-set:
		return pct
	case <-time.After(10 * time.Second):
		t.Fatal("the pacer set nothing in 10s")
		return 0
	}
}

// While chunks compete, GOGC is raised so that the heap may grow by the
// headroom more than Go's default lets it between collections: many times
// the live heap when it is small, a fraction of it when it is big, reworked
// as it changes. When they stop, GOGC goes back.
func TestGCPacerRaisesWhileCompeting(t *testing.T) {
	base := gogc()
	if base <= 0 {
		t.Skip("GOGC is off")
	}
	runtime.GC()
	if live := heapLive(); live == 0 {
		t.Fatal("the runtime reports no live heap after a collection")
	}
	const headroom = 128 << 20
	var calm atomic.Bool
	var live atomic.Uint64
	live.Store(4 << 20)
	p := newGCPacer(headroom)
	p.live = live.Load
	set := runPacer(t, p, &calm)

	p.competing()
	if pct := recvPct(t, set); pct != base+3200 || gogc() != pct {
		t.Errorf("4 MiB live: GOGC set to %d (reads %d), want %d", pct, gogc(), base+3200)
	}
	live.Store(256 << 20) // rechecked within gcRecheck
	if pct := recvPct(t, set); pct != base+50 || gogc() != pct {
		t.Errorf("256 MiB live: GOGC set to %d (reads %d), want %d", pct, gogc(), base+50)
	}
	live.Store(512 << 10) // below 1 MiB counts as 1 MiB; capped
	if pct := recvPct(t, set); pct != min(base+12800, maxGCPct) {
		t.Errorf("512 KiB live: GOGC set to %d, want %d", pct, min(base+12800, maxGCPct))
	}
	calm.Store(true)
	if pct := recvPct(t, set); pct != base || gogc() != base {
		t.Errorf("after the competition GOGC set to %d (reads %d), want %d again", pct, gogc(), base)
	}
	calm.Store(false)
	p.competing() // a new spell raises it again
	if pct := recvPct(t, set); pct <= base {
		t.Errorf("second spell: GOGC set to %d", pct)
	}
	calm.Store(true)
	if pct := recvPct(t, set); pct != base {
		t.Errorf("after the second spell: %d", pct)
	}
}

func TestGCPacerOffWithoutHeadroom(t *testing.T) {
	p := newGCPacer(0)
	if p != nil {
		t.Fatal("a pacer without headroom")
	}
	p.competing() // nil-safe
}
