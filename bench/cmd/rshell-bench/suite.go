//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// stat summarises one side of one metric. For time metrics the values are
// nanoseconds, for rates operations per second, for memory bytes.
type stat struct {
	ok               bool
	median, p99, max float64
	n                int
	note             string
	extraVal         float64
}

func statOf(samples []int64) stat {
	if len(samples) == 0 {
		return stat{}
	}
	s := append([]int64(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		i := int(p*float64(len(s)-1) + 0.5)
		return float64(s[i])
	}
	return stat{ok: true, median: q(0.5), p99: q(0.99), max: float64(s[len(s)-1]), n: len(s)}
}

type row struct {
	name, unit string // unit: time, rate, bytes
	rs, rp     stat
	// ratio, when set, is rshell/RPyC (or rshell/floor) of the medians.
	ratio    float64
	hasRatio bool
	goal     string
	met      *bool
	// floorRatio, when not 0, is the ratio this run's floor reached for a
	// goal this row missed, one the floor itself did not meet (goals).
	floorRatio float64
}

type run struct {
	placement            string
	serverCPU, clientCPU string
	rows                 []*row
	notes                []string
}

func (r *run) add(name, unit string) *row {
	x := &row{name: name, unit: unit}
	r.rows = append(r.rows, x)
	return x
}

func (r *run) get(name string) *row {
	for _, x := range r.rows {
		if x.name == name {
			return x
		}
	}
	return nil
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "  "+format+"\n", a...)
}

// runPlacement starts a fresh rshell server and RPyC server pinned for the
// placement and runs every workload against both.
func (h *harness) runPlacement(ctx context.Context, pl string, withIdle bool) (*run, error) {
	sc, cc := "0", "1"
	if pl == "same" {
		cc = "0"
	}
	res := &run{placement: pl, serverCPU: sc, clientCPU: cc}
	fmt.Fprintf(os.Stderr, "placement %s: servers on CPU %s, clients on CPU %s\n", pl, sc, cc)
	rs, err := h.startRShell(ctx, sc, pl)
	if err != nil {
		return res, err
	}
	defer rs.p.stop()
	var rp *rpServer
	if h.rpycServer != "" {
		if rp, err = h.startRPyC(ctx, sc, false); err != nil {
			return res, err
		}
		defer rp.p.stop()
	}
	q := h.cfg.quick
	pick := func(full, quick int) int {
		if q {
			return quick
		}
		return full
	}
	rsRun := func(w string, n, reps int) (clientResult, error) {
		return runOne(ctx, func(ctx context.Context) (*proc, error) { return h.rsClientProc(ctx, cc, rs, w, n, reps) })
	}
	// rpRun runs an RPyC client; a failure is recorded, never fatal.
	rpRun := func(x *row, w string, n, reps int) (clientResult, bool) {
		if rp == nil {
			x.rp.note = "not installed"
			return clientResult{}, false
		}
		r, err := runOne(ctx, func(ctx context.Context) (*proc, error) { return h.rpClientProc(ctx, cc, rp, w, n, reps) })
		if err != nil {
			x.rp.note = "failed"
			res.notes = append(res.notes, fmt.Sprintf("RPyC %s failed: %v", x.name, err))
			return r, false
		}
		return r, true
	}
	want := h.cfg.want

	// The floor.
	if err := h.floor(ctx, res, sc, cc); err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}

	// connect_first_eval: in warm client processes, as RPyC's, fresh TLS
	// handshakes and resumed ones, interleaved (connectWorkload).
	if want("connect_first_eval") || want("connect_first_eval_resumed") {
		t0 := time.Now()
		cf, cr := res.add("connect_first_eval", "time"), res.add("connect_first_eval_resumed", "time")
		var fresh, resumed []int64
		for range h.cfg.connectProcs {
			r, err := rsRun("connect", pick(50, 3), 0)
			if err != nil {
				return res, fmt.Errorf("connect_first_eval: %w", err)
			}
			fresh = append(fresh, r.Samples...)
			resumed = append(resumed, r.Resumed...)
			if r.Note != "" {
				res.notes = append(res.notes, r.Note)
			}
		}
		cf.rs, cr.rs = statOf(fresh), statOf(resumed)
		if r, ok := rpRun(cf, "connect", pick(100, 5), 0); ok {
			cf.rp = statOf(r.Samples)
			cr.rp = cf.rp
		}
		progress("connect_first_eval: rshell %s (resumed %s), RPyC %s [%s]", fmtTime(cf.rs.median), fmtTime(cr.rs.median), fmtTime(cf.rp.median), since(t0))
	}
	// The connect floor, right after (floorconnect.go).
	if want("connect_first_eval") || want("connect_first_eval_resumed") {
		if err := h.floorConnect(ctx, res, pick(100, 3), sc, cc); err != nil {
			return res, fmt.Errorf("connect floor: %w", err)
		}
	}

	// The same rshell samples against RPyC over its own TLS (rpyc_classic
	// --ssl-certfile/--ssl-keyfile, clients verifying with ssl_connect).
	if rp != nil && (want("connect_first_eval") || want("connect_first_eval_resumed")) {
		t0 := time.Now()
		cf, cr := res.get("connect_first_eval"), res.get("connect_first_eval_resumed")
		tf, tr := res.add("connect_first_eval_rpyc_tls", "time"), res.add("connect_first_eval_resumed_rpyc_tls", "time")
		tf.rs, tr.rs = cf.rs, cr.rs
		rpTLS, err := h.startRPyC(ctx, sc, true)
		if err != nil {
			return res, err
		}
		r, err := runOne(ctx, func(ctx context.Context) (*proc, error) {
			return h.rpClientProc(ctx, cc, rpTLS, "connect", pick(50, 3), 0)
		})
		rpTLS.p.stop()
		if err != nil {
			tf.rp.note, tr.rp.note = "failed", "failed"
			res.notes = append(res.notes, fmt.Sprintf("RPyC over TLS failed: %v", err))
		} else {
			tf.rp = statOf(r.Samples)
			tr.rp = tf.rp
		}
		progress("connect_first_eval vs RPyC over TLS: RPyC %s [%s]", fmtTime(tf.rp.median), since(t0))
	}

	// Request/response workloads.
	for _, w := range []struct {
		name       string
		full, fast int
	}{
		{"eval_rtt", h.cfg.evalN, h.cfg.evalN},
		{"fib_define_execute", 200, 10},
		{"fib30_eval_repr", 5, 0},
	} {
		n := pick(w.full, w.fast)
		if !want(w.name) || n == 0 {
			continue
		}
		t0 := time.Now()
		x := res.add(w.name, "time")
		r, err := rsRun(w.name, n, 0)
		if err != nil {
			return res, fmt.Errorf("%s: %w", w.name, err)
		}
		x.rs = statOf(r.Samples)
		rsRepr := r.Repr
		if r, ok := rpRun(x, w.name, n, 0); ok {
			x.rp = statOf(r.Samples)
			if w.name == "fib30_eval_repr" && r.Repr != rsRepr {
				res.notes = append(res.notes, fmt.Sprintf("fib(30): rshell %q, RPyC %q", rsRepr, r.Repr))
			}
		}
		progress("%s: rshell %s (p99 %s), RPyC %s (p99 %s) [%s]", w.name, fmtTime(x.rs.median), fmtTime(x.rs.p99), fmtTime(x.rp.median), fmtTime(x.rp.p99), since(t0))
	}

	for _, n := range []int{1000, 10000, 100000} {
		name := fmt.Sprintf("replicate_N%d", n)
		if !want(name) {
			continue
		}
		t0 := time.Now()
		reps := max(11, min(50, 500000/n))
		if q {
			reps = max(1, min(5, 5000/n))
		}
		x := res.add(name, "time")
		r, err := rsRun("replicate", n, reps)
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		x.rs = statOf(r.Samples)
		if r, ok := rpRun(x, "replicate", n, reps); ok {
			x.rp = statOf(r.Samples)
		}
		progress("%s: rshell %s, RPyC %s [%s]", name, fmtTime(x.rs.median), fmtTime(x.rp.median), since(t0))
	}

	levels := []int{1, 8, 64}
	if q {
		levels = []int{1, 8}
	}
	for _, c := range levels {
		name := fmt.Sprintf("throughput_c%d", c)
		if !want(name) {
			continue
		}
		t0 := time.Now()
		x := res.add(name, "rate")
		rate, cpu, ccpu, err := throughputRun(ctx, c, rs.p.pid(), func(ctx context.Context) (*proc, error) { return h.rsClientProc(ctx, cc, rs, "throughput", 0, 0) })
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		x.rs = stat{ok: true, median: rate, n: c, note: cpuNote(cpu, ccpu)}
		if rp != nil {
			rate, cpu, ccpu, err := throughputRun(ctx, c, rp.p.pid(), func(ctx context.Context) (*proc, error) { return h.rpClientProc(ctx, cc, rp, "throughput", 0, 0) })
			if err != nil {
				x.rp.note = "failed"
				res.notes = append(res.notes, fmt.Sprintf("RPyC %s failed: %v", name, err))
			} else {
				x.rp = stat{ok: true, median: rate, n: c, note: cpuNote(cpu, ccpu)}
			}
		} else {
			x.rp.note = "not installed"
		}
		progress("%s: rshell %.0f/s (%s), RPyC %.0f/s (%s) [%s]", name, x.rs.median, x.rs.note, x.rp.median, x.rp.note, since(t0))
	}
	// The throughput floor at the busiest level, in the same run (floorrate.go).
	if top := levels[len(levels)-1]; want(fmt.Sprintf("throughput_c%d", top)) {
		if err := h.floorRate(ctx, res, top, sc, cc); err != nil {
			return res, fmt.Errorf("throughput floor: %w", err)
		}
	}

	if want("cancel_latency") {
		t0 := time.Now()
		x := res.add("cancel_latency", "time")
		r, err := rsRun("cancel", pick(30, 3), 0)
		if err != nil {
			return res, fmt.Errorf("cancel_latency: %w", err)
		}
		x.rs = statOf(r.Samples)
		x.rp.note = "cannot"
		progress("cancel_latency: rshell median %s, max %s [%s]", fmtTime(x.rs.median), fmtTime(x.rs.max), since(t0))
	}

	if withIdle && want("idle_conn_rss") {
		if err := h.idle(ctx, res, rs, rp, cc); err != nil {
			return res, err
		}
	}
	return res, nil
}

func cpuNote(server, client time.Duration) string {
	return fmt.Sprintf("CPU/eval: server %s, client %s", fmtTime(float64(server)), fmtTime(float64(client)))
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func (h *harness) floor(ctx context.Context, res *run, sc, cc string) error {
	if !h.cfg.want("floor") && !h.cfg.want("eval_rtt") {
		return nil
	}
	fs, addrs, err := h.startFloorServer(ctx, sc)
	if err != nil {
		return err
	}
	defer fs.stop()
	for i, kind := range []string{"tcp", "yamux", "tls-yamux", "tcp-quiet"} {
		name := map[string]string{"tcp": "floor_tcp_pingpong_16B", "yamux": "floor_yamux_pingpong_16B",
			"tls-yamux": "floor_tls_mux_pingpong_16B", "tcp-quiet": "floor_tcp_quiet_pingpong_16B"}[kind]
		r, err := runOne(ctx, func(ctx context.Context) (*proc, error) {
			return start(ctx, cc, h.self, "-role", "floor-client", "-w", kind, "-addr", addrs[i], "-n", strconv.Itoa(h.cfg.evalN))
		})
		if err != nil {
			return err
		}
		x := res.add(name, "time")
		x.rs = statOf(r.Samples)
		x.rp.note = "—"
		progress("%s: %s (p99 %s)", name, fmtTime(x.rs.median), fmtTime(x.rs.p99))
	}
	return nil
}

// startFloorServer starts the floor's echo server on CPU sc; addrs are its
// listeners: tcp, yamux, tls-yamux, tcp-quiet.
func (h *harness) startFloorServer(ctx context.Context, sc string) (fs *proc, addrs []string, err error) {
	if fs, err = start(ctx, sc, h.self, "-role", "floor-server"); err != nil {
		return nil, nil, err
	}
	line, err := fs.readLine(30 * time.Second)
	if err == nil {
		if addrs = strings.Fields(line); len(addrs) != 4 {
			err = fmt.Errorf("floor server said %q", line)
		}
	}
	if err != nil {
		fs.stop()
		return nil, nil, err
	}
	return fs, addrs, nil
}

func (h *harness) idle(ctx context.Context, res *run, rs *rsServer, rp *rpServer, cc string) error {
	n := h.cfg.idleN
	settle := 3 * time.Second
	if h.cfg.quick {
		settle = 300 * time.Millisecond
	}
	x := res.add("idle_conn_rss", "bytes")
	fmt.Fprintf(os.Stderr, "  idle_conn_rss: %d idle connections to each server...\n", n)
	r, err := idleRun(ctx, rs.p.pid(), n, settle, func(ctx context.Context) (*proc, error) { return h.rsClientProc(ctx, cc, rs, "idle", n, 0) }, nil)
	if err != nil {
		return fmt.Errorf("idle_conn_rss: %w", err)
	}
	x.rs = stat{ok: true, median: r.perConn(), n: n, note: fmt.Sprintf("threads %d→%d", r.threads0, r.thread)}
	x.rs.extraVal = float64(r.thread - r.threads0)
	res.notes = append(res.notes, fmt.Sprintf("idle_conn_rss rshell: %d connections, server RSS %s → %s, OS threads %d → %d (measured after %s of settling; a Go GC cannot be triggered remotely)",
		n, fmtBytes(float64(r.rss0)), fmtBytes(float64(r.rss1)), r.threads0, r.thread, settle))
	if rp != nil {
		r, err := idleRun(ctx, rp.p.pid(), n, settle, func(ctx context.Context) (*proc, error) { return h.rpClientProc(ctx, cc, rp, "idle", n, 0) }, h.rpycGC(ctx, rp.port))
		if err != nil {
			x.rp.note = "failed"
			res.notes = append(res.notes, fmt.Sprintf("RPyC idle_conn_rss failed: %v", err))
		} else {
			x.rp = stat{ok: true, median: r.perConn(), n: n, note: fmt.Sprintf("threads %d→%d", r.threads0, r.thread)}
			res.notes = append(res.notes, fmt.Sprintf("idle_conn_rss RPyC: %d connections, server RSS %s → %s, OS threads %d → %d (after gc.collect() in the server)",
				n, fmtBytes(float64(r.rss0)), fmtBytes(float64(r.rss1)), r.threads0, r.thread))
		}
	} else {
		x.rp.note = "not installed"
	}
	progress("idle_conn_rss: rshell %s/conn (%s), RPyC %s/conn (%s)", fmtBytes(x.rs.median), x.rs.note, fmtBytes(x.rp.median), x.rp.note)
	return nil
}

// runFree measures cancel latency with server and client unpinned, the
// server free to use both CPUs.
func (h *harness) runFree(ctx context.Context) (*run, error) {
	res := &run{placement: "free", serverCPU: "0,1 (unpinned)", clientCPU: "unpinned"}
	if !h.cfg.want("cancel_latency_2cpu") {
		return res, nil
	}
	fmt.Fprintln(os.Stderr, "placement free: server and client unpinned (both CPUs)")
	rs, err := h.startRShell(ctx, "", "free")
	if err != nil {
		return res, err
	}
	defer rs.p.stop()
	n := 30
	if h.cfg.quick {
		n = 3
	}
	r, err := runOne(ctx, func(ctx context.Context) (*proc, error) { return h.rsClientProc(ctx, "", rs, "cancel", n, 0) })
	if err != nil {
		return res, fmt.Errorf("cancel_latency_2cpu: %w", err)
	}
	x := res.add("cancel_latency_2cpu", "time")
	x.rs = statOf(r.Samples)
	x.rp.note = "cannot"
	progress("cancel_latency_2cpu: rshell median %s, max %s", fmtTime(x.rs.median), fmtTime(x.rs.max))
	return res, nil
}
