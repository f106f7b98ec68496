package server

import (
	"context"
	"crypto/tls"
	"net"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

// TestHandshakeSlotPaced: a slot held for d is given back at once, and the
// next holder for another connection waits paceFactor×d (at most maxPace)
// before its step, so setup work takes at most 1/(1+paceFactor) of the
// CPU a slot stands for; the same connection's next step does not wait.
// A second done for the same slot gives nothing back.
func TestHandshakeSlotPaced(t *testing.T) {
	g := newHandshakeGate(1, time.Second)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	bg := context.Background()
	for i, held := range []time.Duration{20 * time.Millisecond, time.Second} {
		if err := g.acquire(bg, a); err != nil {
			t.Fatal(err)
		}
		g.holders.Store(a, holder{since: time.Now().Add(-held)})
		g.done(a)
		g.done(a)
		start := time.Now()
		if err := g.acquire(bg, b); err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		if len(g.slots) != 1 {
			t.Fatalf("step %d: %d slots held, want 1", i, len(g.slots))
		}
		g.release(time.Now(), b) // a step that took no time: no pause after it
		if want := min(paceFactor*held, maxPace); waited < want*9/10 {
			t.Fatalf("step %d after a slot held %v: the next waited %v, want at least %v", i, held, waited, want)
		}
	}
	// The same connection's next step does not wait for its own pause
	// (an hour here: waiting for it would end in the deadline).
	g.pmu.Lock()
	g.next = pause{until: time.Now().Add(time.Hour), who: a}
	g.pmu.Unlock()
	ctx5, cancel5 := context.WithTimeout(bg, 5*time.Second)
	defer cancel5()
	if err := g.acquire(ctx5, a); err != nil {
		t.Fatalf("the same connection's next step waited for its own pause: %v", err)
	}
	// A pause ends early when the waiter's context does, and gives the
	// slot back.
	g.release(time.Now().Add(-time.Second), a)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := g.acquire(ctx, b); err == nil {
		t.Fatal("acquire with a cancelled context succeeded")
	}
	if len(g.slots) != 0 {
		t.Fatal("a cancelled acquire kept its slot")
	}
}

// With nobody to pace for (no connection set up a while ago), another
// connection's step does not wait out the last step's pause.
func TestHandshakeNotPacedForNobody(t *testing.T) {
	g := newHandshakeGate(1, time.Second)
	var settled atomic.Bool
	g.pacing = settled.Load
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	g.pmu.Lock()
	g.next = pause{until: time.Now().Add(time.Hour), who: a}
	g.pmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.acquire(ctx, b); err != nil {
		t.Fatalf("a step waited for a pause with nobody to pace for: %v", err)
	}
	g.release(time.Now(), b)
	// With a settled connection, the pause holds (an hour: the context's
	// end stops the wait).
	g.pmu.Lock()
	g.next = pause{until: time.Now().Add(time.Hour), who: a}
	g.pmu.Unlock()
	settled.Store(true)
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := g.acquire(short, b); err == nil {
		t.Fatal("a step did not wait for the pause with a settled connection there")
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
// a storm makes); the pause after it costs no goroutine either.
func TestHandshakeSlotCostsNoGoroutine(t *testing.T) {
	g, scfg, ccfg := gatedTLS(t)

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
		if len(g.slots) != 0 {
			t.Fatal("the handshake kept its slot")
		}
		if created == 0 {
			return
		}
	}
	t.Fatalf("a gated handshake started %d goroutines, want 0", created)
}

// gatedTLS returns a one-slot gate, a server TLS config behind it with a
// fresh certificate, and a client config that trusts that certificate.
func gatedTLS(t *testing.T) (*handshakeGate, *tls.Config, *tls.Config) {
	t.Helper()
	cert, err := transport.LoadOrCreateCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := newHandshakeGate(1, time.Second)
	scfg := g.config(transport.ServerTLSConfig(cert, nil))
	ccfg := transport.ClientTLSConfig("127.0.0.1:1", transport.TrustOptions{Fingerprint: transport.Fingerprint(cert.Certificate[0])})
	return g, scfg, ccfg
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFlightTakesTwoTurns: the server's TLS flight is two steps on the
// gate, for a full handshake (the key exchange, then the certificate's
// signature) and for a resumed one (the key exchange, then the ticket),
// and the resumed handshake does resume: its ticket is opened with the
// keys that sealed it.
func TestFlightTakesTwoTurns(t *testing.T) {
	g, scfg, ccfg := gatedTLS(t)
	ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)

	for _, resumed := range []bool{false, true} {
		a, b := net.Pipe()
		srv := make(chan error, 1)
		before := g.steps.Load()
		go func() {
			tc := tls.Server(b, scfg)
			err := tc.Handshake()
			if err == nil { // the client reads the ticket, sent after the handshake
				_, err = tc.Write([]byte{1})
			}
			srv <- err
		}()
		tc := tls.Client(a, ccfg)
		cerr := tc.Handshake()
		if cerr == nil {
			_, cerr = tc.Read(make([]byte, 1))
		}
		serr := <-srv
		a.Close()
		b.Close()
		if cerr != nil || serr != nil {
			t.Fatalf("resumed %v: handshake: client %v, server %v", resumed, cerr, serr)
		}
		if got := tc.ConnectionState().DidResume; got != resumed {
			t.Fatalf("DidResume %v, want %v", got, resumed)
		}
		if n := g.steps.Load() - before; n != 2 {
			t.Errorf("resumed %v: the flight took %d turns, want 2", resumed, n)
		}
		if len(g.slots) != 0 {
			t.Fatalf("resumed %v: the handshake kept its slot", resumed)
		}
	}
}
