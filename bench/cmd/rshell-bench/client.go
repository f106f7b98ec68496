//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rshell/rshell/transport"
)

// The rshell side of every workload runs in a client process of its own
// (this binary re-executed with -role rshell-client), pinned like the RPyC
// clients. It prints one JSON object on stdout.

type clientArgs struct {
	addr, tokenFile, fp, workload string
	n, reps                       int
	dur                           time.Duration
}

// clientResult is what a client process reports.
type clientResult struct {
	Samples  []int64 `json:"samples_ns,omitempty"`
	Resumed  []int64 `json:"resumed_ns,omitempty"`
	Ops      int64   `json:"ops,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	CPU      int64   `json:"cpu_ns,omitempty"` // this process's CPU time during the run
	Repr     string  `json:"repr,omitempty"`
	Note     string  `json:"note,omitempty"`
	DidCheck bool    `json:"checked,omitempty"`
}

const fibSrc = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"

// fibDefineExecute is one chunk: define fib, then execute it (fib(15), 1,973 calls).
const fibDefineExecute = fibSrc + "fib(15)\n"

func replicateSetup(n int) string {
	return fmt.Sprintf("d = {'k%%d' %% i: [i, i + 1, i + 2] for i in range(%d)}\n", n)
}

func runClient(a clientArgs) error {
	ctx := context.Background()
	tok, err := transport.ReadTokenFile(a.tokenFile)
	if err != nil {
		return err
	}
	opts := transport.Options{Token: tok, Trust: transport.TrustOptions{Fingerprint: a.fp}, Agent: "rshell-bench"}
	dial := func(addr string) (*transport.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return transport.Dial(dctx, addr, opts)
	}
	out := json.NewEncoder(os.Stdout)
	switch a.workload {
	case "connect":
		return connectWorkload(ctx, a, opts, out)
	case "idle":
		return idleWorkload(a, dial)
	}
	c, err := dial(a.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	eval := func(src string) (transport.Value, error) { return c.Eval(ctx, src, nil) }
	var r clientResult
	switch a.workload {
	case "eval_rtt":
		r.Samples, err = timeN(200, a.n, func() error { _, err := eval("1+1"); return err })
	case "fib_define_execute":
		r.Samples, err = timeN(3, a.n, func() error { _, err := eval(fibDefineExecute); return err })
	case "fib30_eval_repr":
		if _, err = eval(fibSrc); err != nil {
			return err
		}
		r.Samples, err = timeN(0, a.n, func() error {
			v, err := eval("fib(30)")
			if err == nil {
				r.Repr = reprInt(v)
			}
			return err
		})
	case "replicate":
		if _, err = eval(replicateSetup(a.n)); err != nil {
			return err
		}
		warm := 1
		if a.reps < 2 {
			warm = 0
		}
		r.Samples, err = timeN(warm, a.reps, func() error {
			v, err := eval("d")
			if err == nil && v.Len() != a.n {
				err = fmt.Errorf("replicated %d entries, want %d", v.Len(), a.n)
			}
			return err
		})
	case "throughput":
		for range 50 {
			if _, err := eval("1+1"); err != nil {
				return err
			}
		}
		r.Ops, r.Seconds, r.CPU, err = throughput(a.dur, func() error { _, err := eval("1+1"); return err })
	case "cancel":
		r.Samples, err = cancelWorkload(ctx, c, a.n)
		r.DidCheck = err == nil
	default:
		return fmt.Errorf("unknown workload %q", a.workload)
	}
	if err != nil {
		return err
	}
	return out.Encode(r)
}

func reprInt(v transport.Value) string {
	if v.Kind == transport.KindInt {
		if v.Big != nil {
			return v.BigValue().String()
		}
		return strconv.FormatInt(v.Int, 10)
	}
	return fmt.Sprintf("%v", v)
}

// timeN runs f warm times untimed, then n times timed.
func timeN(warm, n int, f func() error) ([]int64, error) {
	for range warm {
		if err := f(); err != nil {
			return nil, err
		}
	}
	s := make([]int64, 0, n)
	for range n {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		s = append(s, int64(time.Since(t0)))
	}
	return s, nil
}

// throughput prints "ready", waits for a line on stdin ("go"), then runs f
// back to back for d.
func throughput(d time.Duration, f func() error) (int64, float64, int64, error) {
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 0, 0, 0, fmt.Errorf("waiting for go: %w", err)
	}
	var ops int64
	cpu0 := cpuTime()
	t0 := time.Now()
	end := t0.Add(d)
	for time.Now().Before(end) {
		if err := f(); err != nil {
			return 0, 0, 0, err
		}
		ops++
	}
	return ops, time.Since(t0).Seconds(), cpuTime() - cpu0, nil
}

// cpuTime is this process's user + system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// connectWorkload times n connects of each kind in one warm process, as
// RPyC's connects are timed (100 in one process): a fresh TLS handshake
// (a new, empty TLS session cache for each sample) and a resumed one (a
// cache that already holds this server's ticket), interleaved. Three dials
// first warm the process's code paths. Each sample is dial + handshake +
// attach + eval 1+1.
func connectWorkload(ctx context.Context, a clientArgs, opts transport.Options, out *json.Encoder) error {
	one := func(cache tls.ClientSessionCache, resume bool) (int64, error) {
		o := opts
		o.Trust.SessionCache = cache
		o.First = &transport.EvalRequest{Src: "1+1"} // as rshell exec sends it
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		t0 := time.Now()
		c, err := transport.Dial(dctx, a.addr, o)
		if err != nil {
			return 0, err
		}
		r, err := c.FirstResult(ctx, nil)
		v := r.Value
		d := time.Since(t0)
		resumed := c.TLSResumed()
		c.Close()
		if err != nil {
			return 0, err
		}
		if resumed != resume {
			return 0, fmt.Errorf("a connect meant to be resumed %v was resumed %v", resume, resumed)
		}
		if v.Int != 2 {
			return 0, fmt.Errorf("1+1 = %v", v)
		}
		return int64(d), nil
	}
	r, err := interleavedConnects(a.n, one)
	if err != nil {
		return err
	}
	return out.Encode(r)
}

// interleavedConnects runs one, a timed connect, n times with a fresh TLS
// session cache (Samples) interleaved with n times with a cache that holds
// the server's ticket (Resumed), after three untimed connects that warm
// the process's code paths and fill that cache.
func interleavedConnects(n int, one func(cache tls.ClientSessionCache, resume bool) (int64, error)) (clientResult, error) {
	var r clientResult
	shared := tls.NewLRUClientSessionCache(4)
	if _, err := one(shared, false); err != nil {
		return r, err
	}
	for range 2 {
		if _, err := one(shared, true); err != nil {
			return r, err
		}
	}
	for range n {
		d, err := one(tls.NewLRUClientSessionCache(4), false)
		if err != nil {
			return r, err
		}
		r.Samples = append(r.Samples, d)
		if d, err = one(shared, true); err != nil {
			return r, err
		}
		r.Resumed = append(r.Resumed, d)
	}
	return r, nil
}

// idleWorkload opens n connections, prints "ready N", then holds them
// until stdin closes.
func idleWorkload(a clientArgs, dial func(string) (*transport.Client, error)) error {
	var (
		mu    sync.Mutex
		conns []*transport.Client
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 16)
	for range a.n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(a.addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if first != nil {
		fmt.Printf("error %d of %d connected: %v\n", len(conns), a.n, first)
		return first
	}
	fmt.Printf("ready %d\n", len(conns))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// cancelWorkload runs `while True: pass`, cancels it after 50 ms and times
// from the cancel until Exec returns (the server has stopped the loop and
// sent the chunk's terminal frame). The session must still answer after.
func cancelWorkload(ctx context.Context, c *transport.Client, n int) ([]int64, error) {
	s := make([]int64, 0, n)
	for range n {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { _, err := c.Eval(cctx, "while True:\n    pass\n", nil); done <- err }()
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		cancel()
		err := <-done
		d := time.Since(t0)
		if err == nil {
			return nil, errors.New("the infinite loop returned without error")
		}
		if errors.Is(err, transport.ErrConnLost) {
			return nil, fmt.Errorf("cancel lost the connection: %w", err)
		}
		s = append(s, int64(d))
		v, err := c.Eval(ctx, "1+1", nil)
		if err != nil || v.Int != 2 {
			return nil, fmt.Errorf("session after cancel: %v %v", v, err)
		}
	}
	return s, nil
}
