//go:build unix

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

var soakFull = flag.Bool("soak.full", false, "run the full soak test (50 clients × 10,000 chunks, 5 kills); also RSHELL_SOAK_FULL=1")

// TestSoakKillRestart: N clients each increment a counter of their own, M
// times, while the server is killed (-9) and restarted K times at random
// moments. A client counts an increment as acknowledged when it got the
// result, or — for the chunk in flight when the server died — when the
// restarted server's Attachment.Last says that chunk completed. At the end
// every counter equals its acknowledged increments, exactly: nothing lost,
// nothing applied twice.
func TestSoakKillRestart(t *testing.T) {
	n, m, kills := 5, 200, 2
	if *soakFull || os.Getenv("RSHELL_SOAK_FULL") == "1" {
		n, m, kills = 50, 10000, 5
	}
	env := testEnv(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	srv := startServerProc(t, env, "--token-file", tokFile)
	tok, err := transport.ReadTokenFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := certFingerprint(filepath.Join(srv.stateDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	opts := transport.Options{Token: tok, Trust: transport.TrustOptions{Fingerprint: fp}, Agent: "soak"}

	total := int64(n * m)
	var progress atomic.Int64
	// Kill at random moments: when the acknowledged increments cross
	// random points between 10% and 90% of the run.
	points := make([]int64, kills)
	for i := range points {
		points[i] = total/10 + rand.Int64N(total*8/10)
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	results := make([]soakResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = soakClient(ctx, srv.addr, opts, m, &progress)
			if results[i].err != nil {
				cancel()
			}
		}()
	}
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()

	killed := 0
	var downtime time.Duration
	for _, p := range points {
		for progress.Load() < p {
			select {
			case <-clientsDone:
			case <-time.After(time.Millisecond): // progress has no other signal
				continue
			}
			break
		}
		select {
		case <-clientsDone:
		default:
			t0 := time.Now()
			srv.kill()
			srv.start()
			downtime += time.Since(t0)
			killed++
		}
	}
	<-clientsDone
	elapsed := time.Since(start)

	var acked, resolvedDone, resolvedLost, reconnects int64
	for i, r := range results {
		if r.err != nil {
			t.Errorf("client %d: %v", i, r.err)
			continue
		}
		if r.final != r.acked {
			t.Errorf("client %d: counter %d, acknowledged %d", i, r.final, r.acked)
		}
		if r.acked != int64(m) {
			t.Errorf("client %d: acknowledged %d of %d", i, r.acked, m)
		}
		acked += r.acked
		resolvedDone += r.resolvedDone
		resolvedLost += r.resolvedLost
		reconnects += r.reconnects
	}
	if killed != kills {
		t.Errorf("killed the server %d times, want %d", killed, kills)
	}
	t.Logf("soak: %d clients × %d chunks in %v (%.0f chunks/s), %d kills (%.2fs to restart in all), %d reconnections; "+
		"chunks in flight at a kill: %d had completed (told by Attachment.Last), %d had not; every counter exact: %v",
		n, m, elapsed.Round(time.Millisecond), float64(acked)/elapsed.Seconds(), killed, downtime.Seconds(), reconnects,
		resolvedDone, resolvedLost, !t.Failed())
}

type soakResult struct {
	acked, final               int64
	resolvedDone, resolvedLost int64 // in-flight chunks at a kill, by outcome
	reconnects                 int64
	err                        error
}

// soakClient runs one client: a session of its own, "c = 0", then m
// increments, resuming its session across server restarts.
func soakClient(ctx context.Context, addr string, opts transport.Options, m int, progress *atomic.Int64) (r soakResult) {
	c, err := soakDial(ctx, addr, opts)
	if err != nil {
		r.err = err
		return r
	}
	defer func() { c.Close() }()
	att := c.Attachment()
	opts.Session, opts.Secret = att.Session, att.Secret

	// run sends one chunk; on a lost connection it resumes and returns the
	// server's last chunk with the seq of the chunk that was in flight.
	run := func(src string) (transport.Value, *transport.LastChunk, uint64, error) {
		res, err := c.Exec(ctx, transport.EvalRequest{Src: src}, nil)
		if err == nil {
			return res.Value, nil, 0, nil
		}
		if !errors.Is(err, transport.ErrConnLost) {
			return transport.Value{}, nil, 0, err
		}
		c.Close()
		r.reconnects++
		if c, err = soakDial(ctx, addr, opts); err != nil {
			return transport.Value{}, nil, 0, err
		}
		a := c.Attachment()
		if !a.Resumed || a.Session != opts.Session {
			return transport.Value{}, nil, 0, fmt.Errorf("the session was not resumed: %+v", a)
		}
		return transport.Value{}, a.Last, res.Seq, errLost
	}

	for { // c = 0 is idempotent: run it until it is acknowledged
		_, _, _, err := run("c = 0")
		if err == nil {
			break
		}
		if !errors.Is(err, errLost) {
			r.err = err
			return r
		}
	}
	for r.acked < int64(m) {
		v, last, pending, err := run("c = c + 1\nc")
		switch {
		case err == nil:
			if !v.Equal(transport.Int(r.acked + 1)) {
				r.err = fmt.Errorf("increment %d returned %+v", r.acked+1, v)
				return r
			}
			r.acked++
			progress.Add(1)
		case errors.Is(err, errLost):
			switch {
			case last != nil && last.Seq == pending && last.State == "done":
				lv, derr := transport.DecodeValue(last.Value, 0)
				if derr != nil || !lv.Equal(transport.Int(r.acked+1)) {
					r.err = fmt.Errorf("the chunk in flight completed with %+v (%v), want %d", lv, derr, r.acked+1)
					return r
				}
				r.acked++
				r.resolvedDone++
				progress.Add(1)
			case last == nil || last.Seq < pending || last.State == "interrupted" || last.State == "cancelled":
				r.resolvedLost++ // not applied: send it again
			default:
				r.err = fmt.Errorf("cannot tell how chunk %d ended: last %+v", pending, last)
				return r
			}
		default:
			r.err = err
			return r
		}
	}
	v, err := c.Eval(ctx, "c", nil)
	for errors.Is(err, transport.ErrConnLost) { // a kill may land here too
		c.Close()
		if c, err = soakDial(ctx, addr, opts); err == nil {
			v, err = c.Eval(ctx, "c", nil)
		}
	}
	if err != nil {
		r.err = err
		return r
	}
	if v.Kind != transport.KindInt {
		r.err = fmt.Errorf("final c = %+v", v)
		return r
	}
	r.final = v.Int
	return r
}

var errLost = errors.New("connection lost; resumed")

// soakDial dials until the server answers (it may be restarting), with
// capped exponential backoff and jitter, bounded by ctx.
func soakDial(ctx context.Context, addr string, opts transport.Options) (*transport.Client, error) {
	d := 20 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := transport.Dial(dctx, addr, opts)
		cancel()
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, transport.ErrConnLost) && !isTransient(err) {
			return nil, err
		}
		t := time.NewTimer(d/2 + rand.N(d/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("server did not come back: %w (last: %v)", ctx.Err(), err)
		}
		d = min(2*d, time.Second)
	}
}

// isTransient: a handshake cut short by the kill, or a server not yet
// ready to listen.
func isTransient(err error) bool {
	var re *transport.RemoteError
	if errors.As(err, &re) {
		return re.Kind() == transport.KindShutdown || re.Kind() == transport.KindLimit
	}
	return !errors.Is(err, transport.ErrAuth) && !errors.Is(err, transport.ErrVersion)
}
