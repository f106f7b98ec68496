package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
	"go.starlark.net/starlark"
	"go.uber.org/goleak"
)

// p99 runs n evals of 1+1 on c and returns the 99th percentile latency.
func p99(c *transport.Client, n int) (time.Duration, error) {
	lat := make([]time.Duration, n)
	for i := range lat {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := c.Eval(ctx, "1 + 1", nil)
		cancel()
		if err != nil || !v.Equal(transport.Int(2)) {
			return 0, fmt.Errorf("healthy client got %+v, %v", v, err)
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat[n*99/100], nil
}

// rawAuthed opens a plaintext connection that passed the handshake.
func rawAuthed(t *testing.T, ts *testServer) net.Conn {
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.ClientHandshake(nc, ts.opts.Token, "attacker", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return nc
}

func frameOf(body []byte) []byte {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	return append(hdr[:], body...)
}

// TestAdversarialSuite throws each kind of hostile input at one real server
// while a well-behaved client keeps using it. Each attack must get its
// clear error, the healthy client must keep working, and afterwards the
// server's goroutines and memory must be back to their baseline. The
// healthy client's p99 under each attack is reported as a ratio of its
// baseline (a measurement, not an assertion: this machine is noisy).
func TestAdversarialSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("adversarial suite skipped in -short mode")
	}
	ignore := goleak.IgnoreCurrent()
	ts := start(t, true, func(c *server.Config) {
		c.HandshakeTimeout = 8 * time.Second
		c.MaxConns = 4000
		c.AuthRefuseDelay = -1 // 1,000 wrong tokens one after another: no wait
		c.Session.MaxResult = 4 << 20
		c.Session.Extra = starlark.StringDict{"explode": starlark.NewBuiltin("explode", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			panic("kaboom")
		})}
	})
	ts.opts.CancelGrace = 30 * time.Second
	good := ts.dial(t)
	eval(t, good, "x = 42")
	if _, err := p99(good, 50); err != nil { // warm up
		t.Fatal(err)
	}
	base, err := p99(good, 300)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBase := ms.HeapAlloc
	t.Logf("baseline p99 %v, heap %d KiB", base, heapBase>>10)

	attack := func(name string, run func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			done := make(chan struct{})
			var under time.Duration
			var err error
			go func() {
				defer close(done)
				under, err = p99(good, 300)
			}()
			defer func() {
				<-done
				if err != nil {
					t.Fatal(err)
				}
			}()
			run(t)
			<-done
			t.Logf("%s: healthy p99 %v = %.1f× baseline", name, under, float64(under)/float64(base))
		})
	}

	attack("garbage", func(t *testing.T) {
		for i := 0; i < 50; i++ {
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = nc.Write(bytes.Repeat([]byte{0xff, 0x00, 0x13}, 1000))
			nc.Close()
		}
	})
	attack("slowloris", func(t *testing.T) {
		conns := make([]net.Conn, 0, 1000)
		for i := 0; i < 1000; i++ {
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, nc)
		}
		// Each silent connection is dropped at the handshake deadline.
		var dropped int
		for _, nc := range conns {
			_ = nc.SetReadDeadline(time.Now().Add(15 * time.Second))
			buf := make([]byte, 512)
			for {
				if _, err := nc.Read(buf); err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						dropped++
					}
					break
				}
			}
			nc.Close()
		}
		if dropped != len(conns) {
			t.Fatalf("%d of %d silent connections were dropped", dropped, len(conns))
		}
	})
	attack("wrong-version", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := transport.ReadMsg(nc, 0); err != nil {
				t.Fatal(err)
			}
			_ = transport.WriteMsg(nc, &transport.Msg{T: transport.THello, Version: 99}, 0)
			expectError(t, nc, transport.KindVersion, "v2")
			nc.Close()
		}
	})
	attack("oversize-and-deep-frames", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			nc := rawAuthed(t, ts)
			mux := transport.ClientMux(nc, transport.MuxOptions{})
			st, _ := mux.Open()
			_ = st.SetDeadline(time.Now().Add(10 * time.Second))
			if i%2 == 0 {
				var hdr [4]byte
				binary.BigEndian.PutUint32(hdr[:], 1<<31)
				_, _ = st.Write(hdr[:])
				expectError(t, st, transport.KindProtocol, "frame too large")
			} else {
				_, _ = st.Write(frameOf(append(bytes.Repeat([]byte{0x81}, 10000), 0xf6)))
				expectError(t, st, transport.KindProtocol, "malformed")
			}
			mux.Close()
		}
	})
	attack("hostile-chunks", func(t *testing.T) {
		c := ts.dial(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, tc := range []struct {
			src, kind string
			dl        time.Duration
		}{
			{"a = [1]\na.append(a)\nb = {'a': a}\nb['b'] = b\nb", "", 0},
			{`"x" * (64 * 1024 * 1024)`, transport.KindLimit, 0},
			// Starlark stops runaway recursion at 100,000 frames; under the
			// race detector that takes longer than the deadline, which stops it first.
			{"def f(n):\n    return f(n + 1)\nf(0)", "stack overflow|deadline", 2 * time.Second},
			{"explode()", transport.KindRuntime, 0},
			{"while True: pass", transport.KindDeadline, 200 * time.Millisecond},
		} {
			_, err := c.Exec(ctx, transport.EvalRequest{Src: tc.src, Deadline: tc.dl}, nil)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("%q: %v", tc.src, err)
				}
				continue
			}
			re, ok := err.(*transport.RemoteError)
			if !ok || !(re.Kind() == tc.kind || strings.Contains(tc.kind, "|") && (re.Kind() == transport.KindDeadline || strings.Contains(re.Info.Msg, "stack overflow"))) {
				t.Fatalf("%q: want %s, got %v", tc.src, tc.kind, err)
			}
		}
		if v := eval(t, c, "len(a)"); !v.Equal(transport.Int(2)) {
			t.Fatalf("session harmed: %+v", v)
		}
	})
	attack("500-simultaneous", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 500)
		for i := 0; i < 500; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				c, err := transport.Dial(ctx, ts.addr, ts.opts)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				v, err := c.Eval(ctx, fmt.Sprintf("%d * 2", i), nil)
				if err != nil || !v.Equal(transport.Int(int64(2*i))) {
					errs <- fmt.Errorf("client %d: %v %v", i, v, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	// Wrong tokens come last: they get this address rate-limited.
	attack("1000-wrong-tokens", func(t *testing.T) {
		o := ts.opts
		o.Token = []byte("not-the-token-not-the-token-0000")
		limited := 0
		for i := 0; i < 1000; i++ {
			_, err := transport.Dial(testCtx(t), ts.addr, o)
			var re *transport.RemoteError
			errors.As(err, &re)
			switch {
			case re != nil && re.Kind() == transport.KindAuth && bytes.Contains([]byte(re.Info.Msg), []byte("too many failed attempts")):
				limited++
			case re != nil && re.Kind() == transport.KindAuth:
			default:
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		if limited < 900 {
			t.Fatalf("only %d of 1000 wrong tokens were rate-limited", limited)
		}
	})

	if v := eval(t, good, "x"); !v.Equal(transport.Int(42)) {
		t.Fatalf("state lost: %+v", v)
	}
	// Everything the attacks started is gone: only the healthy client's
	// connection remains.
	good.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err = goleak.Find(ignore, goleak.IgnoreAnyFunction("github.com/rshell/rshell/server.(*Server).Serve"),
			goleak.IgnoreAnyFunction("github.com/rshell/rshell/server.(*Server).expireLoop"),
			goleak.IgnoreAnyFunction("github.com/rshell/rshell/server.(*Server).livenessLoop"),
			goleak.IgnoreAnyFunction("github.com/rshell/rshell/server.(*Server).quietLoop"),
			goleak.IgnoreAnyFunction("github.com/rshell/rshell/server.(*cpuShare).pass")); err == nil {
			break
		}
		runtime.Gosched()
		time.Sleep(20 * time.Millisecond) // bounded poll: waiting for goroutines to exit
	}
	if err != nil {
		t.Fatalf("goroutines left behind: %v", err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("heap after: %d KiB (baseline %d KiB)", ms.HeapAlloc>>10, heapBase>>10)
	if ms.HeapAlloc > heapBase+64<<20 {
		t.Fatalf("heap grew from %d KiB to %d KiB", heapBase>>10, ms.HeapAlloc>>10)
	}
}
