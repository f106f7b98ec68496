//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
)

// The attacker role (-role attacker -w KIND) runs one attack of the
// adversarial suite against the server, from a process of its own (the
// harness runs it on the healthy client's CPU under nice -n 19: it stands
// in for machines elsewhere). It prints "ready" once the attack is in full
// swing, keeps attacking until a line (or EOF) on stdin, then checks that
// every attempt got the clear answer it should and prints one JSON line
// (attackResult). Each attack mirrors one of server/adversarial_test.go,
// built over TLS as `rshell serve` runs.

type attackArgs struct {
	addr, tokenFile, fp, kind string
	n                         int    // connections (slowloris, conn-storm)
	source                    string // local IP the attack dials from ("" = any)
	noDeadlineWait            bool   // at stop, do not wait for the server's handshake deadline to drop held connections
}

// attackResult is what an attacker process reports.
type attackResult struct {
	Kind       string  `json:"kind"`
	Attempts   int64   `json:"attempts"`
	Expected   int64   `json:"expected"` // attempts answered as they should be
	Unexpected int64   `json:"unexpected"`
	First      string  `json:"first_unexpected,omitempty"`
	Detail     string  `json:"detail,omitempty"`
	Seconds    float64 `json:"seconds"`
	CPU        int64   `json:"cpu_ns"`
	NotAwaited int64   `json:"not_awaited,omitempty"` // held connections whose drop was not waited for (-no-deadline-wait)
}

const (
	attackWorkers = 4                // concurrent attempts for the looping attacks
	attemptLimit  = 30 * time.Second // no single attempt may hang the attacker
	benchToken    = "not-the-token-not-the-token-0000"
)

// attackEnv is what every attack gets.
type attackEnv struct {
	a     attackArgs
	token []byte
	stop  chan struct{}   // closed when the harness says stop
	ctx   context.Context // cancelled at stop
	ready func()

	attempts, expected, unexpected atomic.Int64
	notAwaited                     atomic.Int64
	mu                             sync.Mutex
	first                          string
	details                        map[string]int64 // counts of expected answers by kind
}

func (e *attackEnv) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// ok records an attempt answered as it should be; what classifies it.
func (e *attackEnv) ok(what string) {
	e.attempts.Add(1)
	e.expected.Add(1)
	if what != "" {
		e.mu.Lock()
		e.details[what]++
		e.mu.Unlock()
	}
}

// bad records an attempt that was not answered as it should be.
func (e *attackEnv) bad(err error) {
	e.attempts.Add(1)
	e.unexpected.Add(1)
	e.mu.Lock()
	if e.first == "" {
		e.first = err.Error()
	}
	e.mu.Unlock()
}

// problem records something wrong that is not one attempt's answer.
func (e *attackEnv) problem(err error) {
	e.unexpected.Add(1)
	e.mu.Lock()
	if e.first == "" {
		e.first = err.Error()
	}
	e.mu.Unlock()
}

func runAttacker(a attackArgs) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := &attackEnv{a: a, stop: make(chan struct{}), ctx: ctx, details: map[string]int64{}}
	var once sync.Once
	e.ready = func() { once.Do(func() { fmt.Println("ready") }) }
	if a.kind != "control" {
		tok, err := transport.ReadTokenFile(a.tokenFile)
		if err != nil {
			return err
		}
		e.token = tok
	}
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		close(e.stop)
		cancel() // a chunk still running is cancelled, not waited for
	}()
	attacks := map[string]func(*attackEnv) string{
		"control":         attackControl,
		"control-net":     attackControlNet,
		"garbage":         attackGarbage,
		"slowloris":       attackSlowloris,
		"stalled-tls":     attackStalledTLS,
		"wrong-version":   attackWrongVersion,
		"wrong-tokens":    attackWrongTokens,
		"oversize-frame":  attackOversizeFrame,
		"deep-nesting":    attackDeepNesting,
		"cyclic-huge":     attackCyclicHuge,
		"hostile-chunks":  attackHostileChunks,
		"huge-allocs":     attackHugeAllocs,
		"big-builtins":    attackBigBuiltins,
		"conn-storm":      attackConnStorm,
		"conn-storm-warm": attackConnStorm,
	}
	f := attacks[a.kind]
	if f == nil {
		return fmt.Errorf("unknown attack %q", a.kind)
	}
	cpu0, t0 := cpuTime(), time.Now()
	detail := f(e)
	e.ready() // an attack that failed at once still answers
	r := attackResult{Kind: a.kind, Attempts: e.attempts.Load(), Expected: e.expected.Load(), Unexpected: e.unexpected.Load(),
		First: e.first, Seconds: time.Since(t0).Seconds(), CPU: cpuTime() - cpu0, NotAwaited: e.notAwaited.Load()}
	var parts []string
	for k, v := range e.details {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	slices.Sort(parts)
	if detail != "" {
		parts = append(parts, detail)
	}
	r.Detail = strings.Join(parts, "; ")
	return json.NewEncoder(os.Stdout).Encode(r)
}

// loop runs attempt in attackWorkers goroutines until stop, and says ready
// after the first attempts have started.
func (e *attackEnv) loop(workers int, attempt func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !e.stopped() {
				attempt()
			}
		}()
	}
	e.ready()
	wg.Wait()
}

// ---- building blocks ----

func (e *attackEnv) dialTCP() (net.Conn, error) {
	d := net.Dialer{Timeout: attemptLimit}
	if e.a.source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(e.a.source)}
	}
	c, err := d.Dial("tcp", e.a.addr)
	if err != nil {
		return nil, err
	}
	_ = c.(*net.TCPConn).SetNoDelay(true)
	return c, nil
}

// dialTLS connects and completes a full TLS handshake (no session
// resumption: each attempt costs the server what a new machine's would),
// pinning the server by its fingerprint as clients do.
func (e *attackEnv) dialTLS() (net.Conn, error) {
	raw, err := e.dialTCP()
	if err != nil {
		return nil, err
	}
	cfg := transport.ClientTLSConfig(e.a.addr, transport.TrustOptions{Fingerprint: e.a.fp})
	cfg.ClientSessionCache = nil
	tc := tls.Client(raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(attemptLimit))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// dialAuthed is dialTLS plus the hello with the right token and the multiplexer.
func (e *attackEnv) dialAuthed() (*mux.Session, error) {
	c, err := e.dialTLS()
	if err != nil {
		return nil, err
	}
	if _, err := transport.ClientHandshake(c, e.token, "rshell-bench-attacker", attemptLimit); err != nil {
		c.Close()
		return nil, err
	}
	return transport.ClientMux(c, transport.MuxOptions{}), nil
}

// expectError reads one frame from r and checks it is an error of kind
// whose message contains want.
func expectError(r io.Reader, kind, want string) error {
	m, err := transport.ReadMsg(r, 0)
	if err != nil {
		return fmt.Errorf("want a %s error frame, got %w", kind, err)
	}
	if m.T != transport.TError || m.Err == nil || m.Err.Kind != kind || !strings.Contains(m.Err.Msg, want) {
		return fmt.Errorf("want a %s error containing %q, got %q %+v", kind, want, m.T, m.Err)
	}
	return nil
}

// closedByPeer reads from c until the server closes it and says whether it
// did (EOF or a reset) before the read deadline.
func closedByPeer(c net.Conn, within time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("the server kept the connection open for %s", within)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		return err
	}
}

// awaitDrop waits until the server closes c (at its handshake deadline).
// With -no-deadline-wait the wait ends at stop instead, and dropped is
// false with a nil error: not checked.
func (e *attackEnv) awaitDrop(c net.Conn) (dropped bool, err error) {
	if e.a.noDeadlineWait {
		stop := context.AfterFunc(e.ctx, func() { _ = c.SetReadDeadline(time.Now()) })
		defer stop()
	}
	err = closedByPeer(c, time.Minute)
	if err != nil && e.a.noDeadlineWait && e.stopped() {
		e.notAwaited.Add(1)
		return false, nil
	}
	return err == nil, err
}

func frameOf(body []byte) []byte {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	return append(hdr[:], body...)
}

// ---- the attacks ----

// attackControl sends nothing: it only burns the CPU the attackers use,
// at their priority, to show what that alone costs the healthy client.
func attackControl(e *attackEnv) string {
	e.ready()
	x := uint64(1)
	for !e.stopped() {
		for range 100000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	burnSink.Store(x)
	e.ok("")
	return "CPU burned, no traffic to the server"
}

var burnSink atomic.Uint64

// attackControlNet sends nothing to the server either: it churns loopback
// TCP connections with itself (connect, 3,000 bytes each way, close), 4 at
// a time, as the connection attacks do, to show what the attackers'
// kernel network work on the healthy client's CPU costs it.
func attackControlNet(e *attackEnv) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.bad(err)
		return ""
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 3000)
				if _, err := io.ReadFull(c, buf); err == nil {
					_, _ = c.Write(buf)
				}
			}()
		}
	}()
	junk := bytes.Repeat([]byte{0xff, 0x00, 0x13}, 1000)
	e.loop(attackWorkers, func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			e.bad(err)
			return
		}
		defer c.Close()
		buf := make([]byte, len(junk))
		_ = c.SetDeadline(time.Now().Add(attemptLimit))
		if _, err := c.Write(junk); err != nil {
			e.bad(err)
			return
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			e.bad(err)
			return
		}
		e.ok("loopback round trips")
	})
	return "no traffic to the server"
}

func attackGarbage(e *attackEnv) string {
	junk := bytes.Repeat([]byte{0xff, 0x00, 0x13}, 1000)
	e.loop(attackWorkers, func() {
		c, err := e.dialTCP()
		if err != nil {
			e.bad(err)
			return
		}
		defer c.Close()
		_, _ = c.Write(junk)
		if err := closedByPeer(c, 5*time.Second); err != nil {
			e.bad(err)
			return
		}
		e.ok("closed by the server")
	})
	return ""
}

// attackSlowloris holds n silent connections, opening a new one for each
// the server drops, until stop; then waits until the server has dropped
// every one (at its handshake deadline).
func attackSlowloris(e *attackEnv) string {
	n := max(e.a.n, 1)
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		minHeld, maxHd time.Duration
		connected      atomic.Int64
	)
	var hold func()
	hold = func() {
		defer wg.Done()
		c, err := e.dialTCP()
		if err != nil {
			e.bad(err)
			return
		}
		connected.Add(1)
		t0 := time.Now()
		dropped, err := e.awaitDrop(c)
		c.Close()
		if err != nil {
			e.bad(err)
			return
		}
		if !dropped {
			return
		}
		held := time.Since(t0)
		mu.Lock()
		if minHeld == 0 || held < minHeld {
			minHeld = held
		}
		maxHd = max(maxHd, held)
		mu.Unlock()
		e.ok("dropped by the server")
		if !e.stopped() {
			wg.Add(1)
			go hold()
		}
	}
	// Open them in waves, as fast as the accept queue takes them.
	for range n {
		wg.Add(1)
		go hold()
	}
	// Ready when all n are connected (the kernel completed their TCP
	// handshakes; the server accepts them from its queue).
	for i := 0; connected.Load() < int64(n) && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	e.ready()
	<-e.stop
	wg.Wait()
	if maxHd == 0 {
		return fmt.Sprintf("%d held at once", n)
	}
	return fmt.Sprintf("%d held at once; each dropped after %s–%s", n, minHeld.Round(100*time.Millisecond), maxHd.Round(100*time.Millisecond))
}

// stallConn lets the first write (the ClientHello) out and blocks every
// later one until release is closed, so that the TLS client stops right
// after reading the server's flight; stalled is closed when it does.
type stallConn struct {
	net.Conn
	writes           atomic.Int32
	stalled, release chan struct{}
	once             sync.Once
}

func (s *stallConn) Write(p []byte) (int, error) {
	if s.writes.Add(1) > 1 {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
		return 0, net.ErrClosed
	}
	return s.Conn.Write(p)
}

// attackStalledTLS holds n handshakes stalled after the ClientHello (the
// client never sends its Finished) and meanwhile connects as a real client
// every 100 ms: those connections must go through at once (the server's
// handshake slots must not wait on a stalled peer), and the stalled ones
// must be dropped at the handshake deadline.
func attackStalledTLS(e *attackEnv) string {
	n := max(e.a.n, 1)
	release := make(chan struct{})
	defer close(release)
	var wg sync.WaitGroup
	var stalledUp atomic.Int64
	for range n {
		raw, err := e.dialTCP()
		if err != nil {
			e.bad(err)
			continue
		}
		sc := &stallConn{Conn: raw, stalled: make(chan struct{}), release: release}
		cfg := transport.ClientTLSConfig(e.a.addr, transport.TrustOptions{Fingerprint: e.a.fp})
		cfg.ClientSessionCache = nil
		go func() { _ = tls.Client(sc, cfg).Handshake() }()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer raw.Close()
			select {
			case <-sc.stalled:
			case <-time.After(attemptLimit):
				e.bad(errors.New("the handshake never reached the client's Finished"))
				return
			}
			stalledUp.Add(1)
			// The TLS client is stuck in Write and reads no more: the
			// next read on the raw connection sees the server close it.
			dropped, err := e.awaitDrop(raw)
			if err != nil {
				e.bad(err)
				return
			}
			if dropped {
				e.ok("stalled handshakes dropped by the server")
			}
		}()
	}
	for i := 0; stalledUp.Load() < int64(n) && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	e.ready()
	var slowest time.Duration
	for !e.stopped() {
		t0 := time.Now()
		c, err := e.dialClient()
		d := time.Since(t0)
		slowest = max(slowest, d)
		switch {
		case err != nil:
			e.bad(fmt.Errorf("a new client could not connect: %w", err))
		case d > 2*time.Second:
			c.Close()
			e.bad(fmt.Errorf("a new client took %s to connect", d.Round(time.Millisecond)))
		default:
			c.Close()
			e.ok("new clients connected meanwhile")
		}
		select {
		case <-e.stop:
		case <-time.After(100 * time.Millisecond):
		}
	}
	wg.Wait()
	return fmt.Sprintf("%d stalled at once; slowest new client %s", n, slowest.Round(time.Millisecond))
}

func attackWrongVersion(e *attackEnv) string {
	e.loop(attackWorkers, func() {
		c, err := e.dialTLS()
		if err != nil {
			e.bad(err)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(attemptLimit))
		if _, err := transport.ReadMsg(c, 0); err != nil {
			e.bad(fmt.Errorf("read challenge: %w", err))
			return
		}
		v := transport.ProtocolVersion + 1 // a version this server does not speak
		_ = transport.WriteMsg(c, &transport.Msg{T: transport.THello, Version: v, Agent: "rshell-bench-attacker"}, 0)
		if err := expectError(c, transport.KindVersion, fmt.Sprintf("v%d", v)); err != nil {
			e.bad(err)
			return
		}
		e.ok("version errors naming the client's version")
	})
	return ""
}

// attackWrongTokens dials from its own address (-source, 127.0.0.2 by
// the harness) so that the rate limit it earns is its own.
func attackWrongTokens(e *attackEnv) string {
	bad := []byte(benchToken)
	e.loop(attackWorkers, func() {
		c, err := e.dialTLS()
		if err != nil {
			e.bad(err)
			return
		}
		defer c.Close()
		_, err = transport.ClientHandshake(c, bad, "rshell-bench-attacker", attemptLimit)
		var re *transport.RemoteError
		switch {
		case !errors.Is(err, transport.ErrAuth) || !errors.As(err, &re):
			e.bad(fmt.Errorf("want an auth error, got %v", err))
		case strings.Contains(re.Info.Msg, "too many failed attempts"):
			e.ok("rate-limited")
		default:
			e.ok("auth errors")
		}
	})
	n, limited := e.attempts.Load(), e.details["rate-limited"]
	if n > 0 && limited < n-int64(10+2*attackWorkers) {
		e.problem(fmt.Errorf("the rate limit did not engage: %d of %d attempts limited", limited, n))
	}
	return ""
}

// frameAttack opens a stream per attempt on one authenticated connection
// (a new one if the server closed it), writes frame and expects the error.
func frameAttack(e *attackEnv, frame []byte, kind, want, what string) {
	e.loop(attackWorkers, func() {
		mux, err := e.dialAuthed()
		if err != nil {
			e.bad(err)
			time.Sleep(10 * time.Millisecond)
			return
		}
		defer mux.Close()
		// The server answers 16 malformed frames on a connection and closes
		// it at the 17th (saying so): then dial again.
		for n := 1; !e.stopped(); n++ {
			st, err := mux.Open()
			if err != nil {
				e.bad(fmt.Errorf("the server closed the connection after %d malformed frames: %w", n-1, err))
				return
			}
			_ = st.SetDeadline(time.Now().Add(attemptLimit))
			_, _ = st.Write(frame)
			w := want
			if n == maxBadFramesPerConn+1 {
				w = "which the server now closes"
			}
			err = expectError(st, kind, w)
			st.Close()
			if err != nil {
				e.bad(err)
				return
			}
			e.ok(what)
			if n == maxBadFramesPerConn+1 {
				e.ok("connections closed by the server at their 17th")
				return
			}
		}
	})
}

// maxBadFramesPerConn mirrors the server's limit (server/conn.go).
const maxBadFramesPerConn = 16

func attackOversizeFrame(e *attackEnv) string {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<31)
	frameAttack(e, hdr[:], transport.KindProtocol, "frame too large", "protocol errors 'frame too large'")
	return "frame header claims 2 GiB"
}

func attackDeepNesting(e *attackEnv) string {
	frameAttack(e, frameOf(append(bytes.Repeat([]byte{0x81}, 10000), 0xf6)), transport.KindProtocol, "malformed", "protocol errors 'malformed'")
	return "CBOR arrays nested 10,000 deep"
}

// chunkCase is one hostile chunk and the answer it must get: kind "" means
// success; kinds lists the error kinds accepted; msg, when set, an
// alternative accepted by message text.
type chunkCase struct {
	src   string
	dl    time.Duration
	kinds []string
	msg   string
	what  string
}

func (e *attackEnv) dialClient() (*transport.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptLimit)
	defer cancel()
	return transport.Dial(ctx, e.a.addr, transport.Options{Token: e.token, Trust: transport.TrustOptions{Fingerprint: e.a.fp},
		Agent: "rshell-bench-attacker", CancelGrace: attemptLimit})
}

// chunkAttack runs the cases in turn on each of attackWorkers connections,
// each its own session; staggered, connection k starts at case k, so that
// cases slower than the window still complete.
func chunkAttack(e *attackEnv, cases []chunkCase, staggered bool) {
	var conns atomic.Int64
	e.loop(attackWorkers, func() {
		first := 0
		if staggered {
			first = int(conns.Add(1))
		}
		c, err := e.dialClient()
		if err != nil {
			e.bad(err)
			time.Sleep(10 * time.Millisecond)
			return
		}
		defer c.Close()
		for i := 0; !e.stopped(); i++ {
			tc := cases[(first+i)%len(cases)]
			ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
			_, err := c.Exec(ctx, transport.EvalRequest{Src: tc.src, Deadline: tc.dl}, nil)
			cancel()
			if e.stopped() && err != nil {
				return // cancelled by the stop: no answer to check
			}
			if len(tc.kinds) == 0 {
				if err != nil {
					e.bad(fmt.Errorf("%q: %w", tc.src, err))
					return
				}
				e.ok(tc.what)
				continue
			}
			var re *transport.RemoteError
			if !errors.As(err, &re) {
				e.bad(fmt.Errorf("%q: want %v, got %v", tc.src, tc.kinds, err))
				return
			}
			good := tc.msg != "" && strings.Contains(re.Info.Msg, tc.msg)
			for _, k := range tc.kinds {
				good = good || re.Kind() == k
			}
			if !good {
				e.bad(fmt.Errorf("%q: want %v, got %s: %s", tc.src, tc.kinds, re.Kind(), re.Info.Msg))
				continue
			}
			e.ok(tc.what)
		}
	})
}

func attackCyclicHuge(e *attackEnv) string {
	chunkAttack(e, []chunkCase{
		{src: "a = [1]\na.append(a)\nb = {'a': a}\nb['b'] = b\nb", what: "cyclic values answered (cycles as refs)"},
		{src: `"x" * (64 * 1024 * 1024)`, kinds: []string{transport.KindLimit}, what: "limit errors for a 64 MiB result"},
	}, false)
	return ""
}

func attackHostileChunks(e *attackEnv) string {
	chunkAttack(e, []chunkCase{
		{src: "while True: pass", dl: 200 * time.Millisecond, kinds: []string{transport.KindDeadline}, what: "infinite loops stopped at their 200 ms deadline"},
		{src: "def f(n):\n    return f(n + 1)\nf(0)", dl: 2 * time.Second, kinds: []string{transport.KindDeadline}, msg: "stack overflow", what: "runaway recursions stopped"},
		{src: `"x" * (1 << 31)`, kinds: []string{transport.KindRuntime}, what: "2 GiB allocations refused"},
		{src: "len([0] * (4 * 1024 * 1024))", what: "64 MiB allocations done"},
	}, false)
	return "4 connections, each its own session"
}

// attackHugeAllocs: sustained big allocations, the load that found the
// collector's long stalls (bench/RESULTS.md, items 63 and 64): 64 MiB
// lists built by a repeat, 16 MiB ones by appending, in turn.
func attackHugeAllocs(e *attackEnv) string {
	chunkAttack(e, []chunkCase{
		{src: "len([0] * (4 * 1024 * 1024))", what: "64 MiB lists built by a repeat"},
		{src: "l = []\nfor i in range(1024 * 1024):\n    l.append(i)\nlen(l)", what: "16 MiB lists built by appending"},
	}, true)
	return "4 connections, each its own session"
}

// attackBigBuiltins: builtins whose loop goes through millions of elements
// in one call, each of which held the CPU turn, and every other client,
// for 0.1-2 s before they counted their elements as steps (item 66).
func attackBigBuiltins(e *attackEnv) string {
	chunkAttack(e, []chunkCase{
		{src: "len(sorted(range(1 << 20, 0, -1)))", what: "sorts of 1M elements"},
		{src: "len(list(range(4 << 20)))", what: "lists of a 4M range"},
		{src: "len(dict(zip(range(1 << 20), range(1 << 20))))", what: "dicts of 1M pairs"},
		{src: "max(range(4 << 20))", what: "maxima of 4M elements"},
		{src: "len(str(list(range(1 << 20))))", what: "str() of 1M-element lists"},
		{src: `len(("a " * (4 << 20)).split())`, what: "splits of 8 MiB strings"},
	}, true)
	return "4 connections, each its own session"
}

// attackConnStorm: bursts of n simultaneous connections, each a full TLS
// handshake (conn-storm) or a resumed one (conn-storm-warm: the process's
// TLS session cache, as one client machine reconnecting), auth, attach and
// one eval, checked; the next burst starts when the last one is done.
func attackConnStorm(e *attackEnv) string {
	n := max(e.a.n, 1)
	fresh := e.a.kind == "conn-storm"
	bursts := 0
	var slowest time.Duration
	for !e.stopped() {
		bursts++
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if fresh {
					err = e.stormOne(i)
				} else {
					err = e.stormWarm(i)
				}
				if err != nil {
					e.bad(err)
					return
				}
				e.ok("connected, authenticated and evaluated")
			}()
		}
		e.ready()
		wg.Wait()
		slowest = max(slowest, time.Since(t0))
	}
	how := "full TLS handshakes"
	if !fresh {
		how = "resumed TLS sessions"
	}
	return fmt.Sprintf("%d bursts of %d, %s; slowest burst %s", bursts, n, how, slowest.Round(10*time.Millisecond))
}

// stormOne: full handshake, hello, attach a new session, eval i * 2.
func (e *attackEnv) stormOne(i int) error {
	mux, err := e.dialAuthed()
	if err != nil {
		return err
	}
	defer mux.Close()
	st, err := mux.Open()
	if err != nil {
		return err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(attemptLimit))
	r := bufio.NewReader(st)
	if err := transport.WriteMsg(st, &transport.Msg{T: transport.TAttach}, 0); err != nil {
		return err
	}
	m, err := transport.ReadMsg(r, 0)
	if err != nil || m.T != transport.TAttached {
		return fmt.Errorf("attach: %v %+v", err, m)
	}
	if err := transport.WriteMsg(st, &transport.Msg{T: transport.TEval, Seq: 1, Src: fmt.Sprintf("%d * 2", i)}, 0); err != nil {
		return err
	}
	for {
		m, err := transport.ReadMsg(r, 0)
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		switch m.T {
		case transport.TOut:
			continue
		case transport.TResult:
			v, err := transport.DecodeValue(m.Value, 0)
			if err != nil || !v.Equal(transport.Int(int64(2*i))) {
				return fmt.Errorf("client %d: %+v %v", i, v, err)
			}
			return nil
		default:
			return fmt.Errorf("client %d: unexpected %q %+v", i, m.T, m.Err)
		}
	}
}

func (e *attackEnv) stormWarm(i int) error {
	c, err := e.dialClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), attemptLimit)
	defer cancel()
	v, err := c.Eval(ctx, fmt.Sprintf("%d * 2", i), nil)
	if err != nil || !v.Equal(transport.Int(int64(2*i))) {
		return fmt.Errorf("client %d: %+v %v", i, v, err)
	}
	return nil
}
