package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// handshakeGate bounds how many TLS handshakes do their expensive part at
// once, so that a storm of new connections queues instead of taking the
// CPU from the clients already connected. A slot covers only the server's
// CPU work: it is taken when the ClientHello has arrived
// (GetConfigForClient; a peer that connects and sends nothing holds none)
// and given back once the server's flight (key exchange, certificate
// signature) is written (VerifyConnection, called before the client's
// Finished is awaited; the flight is two turns, see splitFlight), so no
// slot waits on a network round trip and a peer that stalls after its
// ClientHello cannot hold one (with the slot held to the end of the
// handshake, two such peers shut every new client out until the
// handshake deadline). With client certificates required,
// VerifyConnection comes after the client's certificate arrives, so there
// a slot does span that round trip. A slot is also given back when the
// handshake ends however it ends (its context is then done), so no caller
// can leak one — a refusal after TLS (rate limit, connection limit) used
// to keep its slot for good. As a slot is CPU work only, the default is
// one per CPU.
//
// The rest of a new connection's setup (the client's Finished and hello,
// the multiplexer's first frames, the attach) takes slots too, a step at
// a time, never across a wait for the peer (setupConn). Each step is
// followed by a pause four times as long as it held its slot (release),
// spent by the next holder, if it is another connection's, on a timer, so
// a storm's setup work leaves the Go scheduler idle moments, in which it
// polls the network and finds the requests of the clients already
// connected.
type handshakeGate struct {
	slots   chan struct{}
	wait    time.Duration
	holders sync.Map // net.Conn -> holder: connections holding a slot for their TLS flight

	queued atomic.Int32  // setup steps (ClientHellos first) waiting for a slot
	steps  atomic.Int64  // setup steps that got a slot (tests)
	room   chan struct{} // a token when one stopped waiting (accepting)

	pmu  sync.Mutex
	next pause // the pause the last step left (release)

	// pacing says whether there is anyone to pace setup for: a
	// connection set up a while ago (Server.settled). Nil: always.
	pacing func() bool
}

// pause is the wait the last step of setup left for the next: until when,
// and whose step it was (the same connection's next step does not wait,
// so a lone connection is never slowed).
type pause struct {
	until time.Time
	who   any
}

// holder is a connection's hold on a slot: since when, and how to stop the
// release that the end of its handshake would otherwise run.
type holder struct {
	since time.Time
	ctx   context.Context // the handshake's
	stop  func() bool
}

// settleAge is how long a connection must have been open for new
// connections' setup to be paced for it (handshakeGate.pacing): the
// clients already at work, not the ones arriving in the same burst.
const settleAge = time.Second

// maxQueuedPerSlot bounds the ClientHellos waiting for a slot, per slot,
// before the server stops accepting for a while (accepting).
const maxQueuedPerSlot = 4

var errHandshakeBusy = errors.New("too many handshakes at once; try again")

func newHandshakeGate(n int, wait time.Duration) *handshakeGate {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0))
	}
	return &handshakeGate{slots: make(chan struct{}, n), wait: wait, room: make(chan struct{}, 1)}
}

// accepting returns when the server may accept the next connection: at
// once, unless maxQueuedPerSlot ClientHellos per slot already wait for the
// gate. A storm of connections then waits in the kernel's accept queue,
// not as hundreds of goroutines that each parse a ClientHello and park:
// parsed all at once, those held the connected clients' requests behind
// them in the run queue (measured: a healthy client's reader runnable for
// up to 22 ms). A peer that connects and sends nothing never waits for the
// gate, so it cannot stop the accepting.
func (g *handshakeGate) accepting(ctx context.Context) {
	for g.queued.Load() >= int32(maxQueuedPerSlot*cap(g.slots)) {
		t := time.NewTimer(10 * time.Millisecond) // bounds a missed signal
		select {
		case <-g.room:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// dequeued counts a ClientHello that stopped waiting for a slot.
func (g *handshakeGate) dequeued() {
	g.queued.Add(-1)
	select {
	case g.room <- struct{}{}:
	default:
	}
}

// config returns cfg with the gate on its ClientHello.
func (g *handshakeGate) config(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	next := cfg.GetConfigForClient
	c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if err := g.acquire(hi.Context(), hi.Conn); err != nil {
			return nil, err
		}
		// If the handshake ends before the server's flight is out, its
		// context's end gives the slot back. done stops that, so a
		// handshake that gets that far costs no goroutine.
		conn := hi.Conn
		g.hold(hi.Context(), conn)
		base := cfg
		if next != nil {
			nc, err := next(hi)
			if err != nil {
				return nil, err
			}
			if nc != nil {
				base = nc
			}
		}
		// This connection's config: the same, plus the slot's release
		// once the server's flight is out.
		// The closure keeps only the net.Conn, not hi: the connection keeps
		// its config, and hi would keep the parsed ClientHello (~1.7 KiB
		// with a post-quantum key share) for the connection's life.
		pc := base.Clone()
		pc.GetConfigForClient = nil
		tickets := c // whose keys open this connection's tickets
		if next != nil {
			tickets = nil // those of the config next returned, if it set its own
		}
		g.splitFlight(pc, tickets, conn)
		verify, conn := base.VerifyConnection, hi.Conn
		pc.VerifyConnection = func(cs tls.ConnectionState) error {
			g.done(conn)
			if sc, ok := conn.(*setupConn); ok {
				sc.arm()
			}
			if verify != nil {
				return verify(cs)
			}
			return nil
		}
		return pc, nil
	}
	return c
}

// splitFlight makes the server's TLS flight for conn two turns on the gate
// instead of one: the key exchange, then (after the pause it leaves, if
// another connection's step comes between) the rest — for a full handshake
// the certificate's signature, for a resumed one the ticket's decryption,
// then the flight's encryption and write. crypto/tls runs the flight in
// one go, and on a server with one CPU a connected client's request that
// arrives meanwhile waits for all of it; the certificate's callback and
// the ticket's are the two points where the flight calls back between
// its parts. Only a config with one certificate and no callbacks of its
// own is split (what rshell serve makes); any other keeps one turn. A
// ticket is opened with the keys of tickets (the config the handshake
// began with, whose keys crypto/tls would use); nil: not split there.
func (g *handshakeGate) splitFlight(pc, tickets *tls.Config, conn net.Conn) {
	if len(pc.Certificates) == 1 && pc.GetCertificate == nil {
		cert := &pc.Certificates[0]
		pc.Certificates = nil
		pc.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if err := g.again(conn); err != nil {
				return nil, err
			}
			return cert, nil
		}
	}
	if tickets != nil && pc.UnwrapSession == nil && !pc.SessionTicketsDisabled {
		pc.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			if err := g.again(conn); err != nil {
				return nil, err
			}
			return tickets.DecryptTicket(identity, cs)
		}
	}
}

// again ends conn's turn for its TLS flight and takes the next, as
// acquire does: behind the steps already waiting, and after the pause the
// last one left. A connection holding no turn takes none.
func (g *handshakeGate) again(conn net.Conn) error {
	v, ok := g.holders.Load(conn)
	if !ok {
		return nil
	}
	ctx := v.(holder).ctx
	g.done(conn)
	if err := g.acquire(ctx, conn); err != nil {
		return err
	}
	g.hold(ctx, conn)
	return nil
}

// hold records conn's turn for its TLS flight, taken now; if the handshake
// ends before the flight is out, its context's end gives the turn back.
func (g *handshakeGate) hold(ctx context.Context, conn net.Conn) {
	g.holders.Store(conn, holder{since: time.Now(), ctx: ctx, stop: context.AfterFunc(ctx, func() { g.done(conn) })})
}

// done gives back the slot conn holds for its TLS flight, if any (at most
// once per slot), as release does.
func (g *handshakeGate) done(conn net.Conn) {
	v, ok := g.holders.LoadAndDelete(conn)
	if !ok {
		return
	}
	h := v.(holder)
	if h.stop != nil {
		h.stop()
	}
	g.release(h.since, conn)
}

// The pause after a step of a connection's setup is paceFactor times as
// long as the step held its slot, at most maxPace: setup work under
// contention then takes at most a fifth of the CPU a slot stands for, and
// the clients already connected get the rest. The price: a burst of 500
// new connections is served in 2.0–2.5 s instead of 1.0–1.8 s (with 1×).
// Alternating runs of the storm rows, the healthy client's p99 ÷ its
// baseline, full TLS and resumed: 1×, 6.8–16.5× and 4.1–17.3×; 2×,
// 5.3–8.3× and 3.2–6.2×; 3×, 4.8–7.3× and 3.5–4.2×; 4×, 3.2–6.4× and
// 2.6–3.5×. A lone connection is never paused (acquire), nor are new
// connections when no connection older than settleAge is there for the
// pauses to serve (a fleet of clients reconnecting to a restarted server
// is set up at full speed).
const (
	paceFactor = 4
	maxPace    = 5 * time.Millisecond
)

// acquire takes a slot for a step of a connection's setup, waiting at most
// the gate's wait (errHandshakeBusy) or until ctx is done, then waits out
// the pause the last step left (release). The pause is spent here, on a
// timer, holding the slot: with nothing else to run, the Go scheduler
// looks at the network meanwhile, which it does only when its run queue
// is empty.
//
// who is the connection the step is for (compared with ==).
func (g *handshakeGate) acquire(ctx context.Context, who any) error {
	t := time.NewTimer(g.wait)
	defer t.Stop()
	g.queued.Add(1)
	select {
	case g.slots <- struct{}{}:
		g.dequeued()
	case <-t.C:
		g.dequeued()
		return errHandshakeBusy
	case <-ctx.Done():
		g.dequeued()
		return ctx.Err()
	}
	g.steps.Add(1)
	g.pmu.Lock()
	p := g.next
	g.pmu.Unlock()
	if d := time.Until(p.until); d > 0 && p.who != who && (g.pacing == nil || g.pacing()) {
		t.Reset(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			<-g.slots
			return ctx.Err()
		}
	}
	return nil
}

// release gives back a slot acquire took at since for who. The next step
// of another connection waits paceFactor times as long as this one held
// it (at most maxPace), and the connected clients' requests, queued
// behind setup work on a busy server, wait behind one step at most.
func (g *handshakeGate) release(since time.Time, who any) {
	now := time.Now()
	g.pmu.Lock()
	g.next = pause{until: now.Add(min(paceFactor*now.Sub(since), maxPace)), who: who}
	g.pmu.Unlock()
	<-g.slots
}
