package server

import (
	"context"
	"crypto/tls"
	"net"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
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
		g.holders.Store(a, holder{since: time.Now().Add(-held)})
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

// TestHandshakeSlotCostsNoGoroutine: a handshake that gets its slot and
// sends its flight gives the slot back itself, and stops the release its
// end would otherwise run (on a goroutine of its own, one per connection
// a storm makes). Only the pacing release is left, recorded here.
func TestHandshakeSlotCostsNoGoroutine(t *testing.T) {
	cert, err := transport.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := newHandshakeGate(1, time.Second)
	var paced []func()
	g.after = func(_ time.Duration, f func()) { paced = append(paced, f) }
	scfg := g.config(transport.ServerTLSConfig(cert, nil))
	ccfg := transport.ClientTLSConfig("127.0.0.1:1", transport.TrustOptions{Fingerprint: transport.Fingerprint(cert.Certificate[0])})

	var created uint64
	for range 3 { // another test's timer may start a goroutine meanwhile
		a, b := net.Pipe()
		srv := make(chan error, 1)
		start := make(chan struct{})
		go func() {
			<-start
			srv <- tls.Server(b, scfg).Handshake()
		}()
		before := goroutinesCreated()
		close(start)
		cerr := tls.Client(a, ccfg).Handshake()
		serr := <-srv
		created = goroutinesCreated() - before
		a.Close()
		b.Close()
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, server %v", cerr, serr)
		}
		if len(paced) != 1 {
			t.Fatalf("%d paced releases of the slot, want 1", len(paced))
		}
		paced[0]()
		paced = nil
		if created == 0 {
			return
		}
	}
	t.Fatalf("a gated handshake started %d goroutines, want 0", created)
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
