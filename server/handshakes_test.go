package server

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestHandshakeSlotPaced: a slot held for d comes back d after the
// handshake's CPU work (at most maxPace), not at once, so handshakes take
// at most half of the CPU a slot stands for.
func TestHandshakeSlotPaced(t *testing.T) {
	g := newHandshakeGate(1, time.Second)
	var paused []time.Duration
	var release []func()
	g.after = func(d time.Duration, f func()) { paused = append(paused, d); release = append(release, f) }
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	for i, held := range []time.Duration{2 * time.Millisecond, time.Second} {
		g.slots <- struct{}{}
		g.holders.Store(a, time.Now().Add(-held))
		g.done(a)
		g.done(a) // a second done for the same slot gives nothing back
		select {
		case g.slots <- struct{}{}:
			t.Fatalf("handshake %d: the slot was free at once", i)
		default:
		}
		if len(paused) != i+1 || paused[i] < held*9/10 && held < maxPace || paused[i] > maxPace {
			t.Fatalf("handshake %d held its slot %v: paused %v (cap %v)", i, held, paused, maxPace)
		}
		release[i]()
		select {
		case g.slots <- struct{}{}:
			<-g.slots
		default:
			t.Fatalf("handshake %d: the slot did not come back after the pause", i)
		}
	}
}

// TestAcceptingWaitsForTheGateQueue: with maxQueuedPerSlot ClientHellos per
// slot waiting, the server stops accepting until one stops waiting.
func TestAcceptingWaitsForTheGateQueue(t *testing.T) {
	g := newHandshakeGate(1, time.Second)
	g.accepting(context.Background()) // nobody waits: at once
	g.queued.Store(maxQueuedPerSlot)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.accepting(context.Background())
	}()
	select {
	case <-done:
		t.Fatal("accepting returned with the gate's queue full")
	case <-time.After(30 * time.Millisecond): // longer than its 10 ms re-check: it looked again and still waits
	}
	g.dequeued()
	<-done

	// A shutdown ends the wait too.
	g.queued.Store(maxQueuedPerSlot)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.accepting(ctx)
}
