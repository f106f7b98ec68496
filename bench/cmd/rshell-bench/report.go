//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

type report struct {
	cfg     config
	machine string
	rpyc    string
	server  string
	date    time.Time
	elapsed time.Duration
	runs    []*run
	// load averages (1 min) before and after: other work on the machine
	// makes every number worse and noisier.
	loadStart, loadEnd string
	free               *run
	adv                *advRun // the adversarial suite, when run
}

func fmtTime(ns float64) string {
	switch {
	case ns <= 0:
		return "—"
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func fmtBytes(b float64) string {
	switch {
	case b == 0:
		return "—"
	case b < 10<<10 && b > -10<<10:
		return fmt.Sprintf("%.0f B", b)
	case b < 10<<20 && b > -10<<20:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

func (x *row) fmtVal(s stat, v float64) string {
	if !s.ok {
		if s.note != "" {
			return s.note
		}
		return "—"
	}
	switch x.unit {
	case "rate":
		if strings.HasPrefix(x.name, "floor_") {
			return fmt.Sprintf("%.0f round trips/s", v)
		}
		return fmt.Sprintf("%.0f evals/s", v)
	case "bytes":
		return fmtBytes(v) + "/conn"
	}
	return fmtTime(v)
}

func boolp(b bool) *bool { return &b }

// connectGoals are issue 3's connect goals, each against both RPyCs (the
// goal says "with TLS on", which reads either way: bench/README.md).
var connectGoals = map[string]struct {
	limit   float64
	against string
}{
	"connect_first_eval":                  {0.6, "without TLS"},
	"connect_first_eval_resumed":          {0.4, "without TLS"},
	"connect_first_eval_rpyc_tls":         {0.6, "over TLS"},
	"connect_first_eval_resumed_rpyc_tls": {0.4, "over TLS"},
}

// goals fills in ratio, goal and met for the rows of one run.
func goals(r *run, idleN int) {
	ratio := func(x *row) {
		if x.rs.ok && x.rp.ok && x.rp.median != 0 {
			x.ratio, x.hasRatio = x.rs.median/x.rp.median, true
		}
	}
	atMost := func(x *row, limit float64) {
		x.goal = fmt.Sprintf("≤ %.2g×", limit)
		if x.hasRatio {
			x.met = boolp(x.ratio <= limit)
		}
	}
	eval := r.get("eval_rtt")
	for _, x := range r.rows {
		switch {
		case strings.HasPrefix(x.name, "floor_tls_connect"):
			// The connect floor's ratio: its median ÷ RPyC's connect
			// without TLS, the least that connect row's ratio could be.
			of := "connect_first_eval" + strings.TrimPrefix(x.name, "floor_tls_connect")
			if cf := r.get("connect_first_eval"); cf != nil && cf.rp.ok && x.rs.ok {
				x.ratio, x.hasRatio = x.rs.median/cf.rp.median, true
			}
			x.goal = fmt.Sprintf("floor for %s's ratio (goal ≤ %.1f×)", of, connectGoals[of].limit)
		case strings.HasPrefix(x.name, "floor_") && x.unit == "rate":
			// A throughput floor's ratio: the floor's rate ÷ RPyC's at
			// the same level, the most that row's ratio could be here.
			c := throughputLevel(x.name)
			if tp := r.get(fmt.Sprintf("throughput_c%d", c)); tp != nil && tp.rp.ok && tp.rp.median != 0 && x.rs.ok {
				x.ratio, x.hasRatio = x.rs.median/tp.rp.median, true
			}
			x.goal = fmt.Sprintf("ceiling for throughput_c%d's ratio", c)
		case strings.HasPrefix(x.name, "floor_"):
			if eval != nil && eval.rs.ok && x.rs.ok {
				x.ratio, x.hasRatio = eval.rs.median/x.rs.median, true
			}
			if x.name == "floor_yamux_pingpong_16B" {
				limit := 1.4
				if r.serverCPU == r.clientCPU {
					limit = 1.0
				}
				atMost(x, limit)
				x.goal = fmt.Sprintf("eval_rtt ≤ %.1f× floor", limit)
			} else {
				x.goal = "eval_rtt ÷ floor"
			}
		case connectGoals[x.name].limit > 0:
			g := connectGoals[x.name]
			ratio(x)
			atMost(x, g.limit)
			x.goal = fmt.Sprintf("≤ %.1f× RPyC %s", g.limit, g.against)
		case x.name == "eval_rtt":
			ratio(x)
			atMost(x, 0.8)
		case x.name == "replicate_N100000":
			ratio(x)
			atMost(x, 0.25)
			x.goal = "≤ 0.25× (≥ 4× faster)"
		case x.name == "throughput_c64":
			ratio(x)
			x.goal = "≥ 5×"
			if x.hasRatio {
				x.met = boolp(x.ratio >= 5)
			}
		case x.name == "idle_conn_rss":
			ratio(x)
			x.goal = "≤ 1.0×, no thread per conn"
			if x.hasRatio {
				noThreadPerConn := x.rs.extraVal < float64(idleN)/100
				x.met = boolp(x.ratio <= 1.0 && noThreadPerConn)
			}
			if idleN < 10000 {
				x.goal += fmt.Sprintf(" (at %d conns; goal asks 10,000)", idleN)
			}
		case x.name == "cancel_latency":
			x.goal = "max ≤ 15 ms"
			x.met = boolp(x.rs.ok && x.rs.max <= 15e6)
		case x.name == "cancel_latency_2cpu":
			x.goal = "max ≤ 2 ms"
			x.met = boolp(x.rs.ok && x.rs.max <= 2e6)
		default:
			ratio(x)
		}
	}
	beyondFloors(r)
}

// beyondFloors marks each missed goal that this run's floor missed too:
// no client doing what the floor does could have met it here.
func beyondFloors(r *run) {
	for _, x := range r.rows {
		if x.met == nil || *x.met {
			continue
		}
		var f *row
		beyond := func(float64) bool { return false }
		switch g := connectGoals[x.name]; {
		case x.name == "throughput_c64":
			f = r.get("floor_tcp_quiet_c64")
			beyond = func(v float64) bool { return v < 5 }
		case g.against == "without TLS":
			f = r.get("floor_tls_connect" + strings.TrimPrefix(x.name, "connect_first_eval"))
			beyond = func(v float64) bool { return v > g.limit }
		}
		if f != nil && f.hasRatio && beyond(f.ratio) {
			x.floorRatio = f.ratio
		}
	}
}

func placementDesc(r *run) string {
	switch r.placement {
	case "split":
		return fmt.Sprintf("split — servers pinned to CPU %s, clients to CPU %s", r.serverCPU, r.clientCPU)
	case "same":
		return fmt.Sprintf("same — servers and clients all pinned to CPU %s", r.serverCPU)
	}
	return "free — server and client not pinned (the server may use both CPUs)"
}

func (rep *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full"
	if rep.cfg.quick {
		mode = "quick (CI smoke: fewer samples, not for publishing)"
	}
	host, _ := os.Hostname()
	advOnly := rep.cfg.onlyAdversarial()
	if advOnly {
		w("# rshell under attack: the adversarial suite, one run, one machine\n\n")
	} else {
		w("# rshell vs RPyC: one run, one machine\n\n")
	}
	w("- date: %s (took %s)\n", rep.date.UTC().Format("2006-01-02 15:04 MST"), rep.elapsed.Round(time.Second))
	w("- machine: %d vCPUs (nproc), %s, host %s, %s/%s\n", runtime.NumCPU(), rep.machine, host, runtime.GOOS, runtime.GOARCH)
	w("- Go: %s; rshell server: %s\n", runtime.Version(), rep.server)
	sessions := "durable (the default: each chunk's changes are written to the session store in the state dir, synced, before the answer)"
	if rep.cfg.memory {
		sessions = "in memory only (--state-dir none)"
	}
	w("- rshell sessions: %s\n", sessions)
	if advOnly {
		w("- mode: %s; adversarial windows %s\n", mode, rep.cfg.attackWindow)
	} else {
		w("- RPyC: %s\n", rep.rpyc)
		w("- mode: %s; eval_rtt/floor samples %d; throughput %s per level; idle connections %d; adversarial windows %s\n", mode, rep.cfg.evalN, rep.cfg.dur, rep.cfg.idleN, rep.cfg.attackWindow)
	}
	w("- load average (1, 5, 15 min) at start: %s; at end: %s\n", rep.loadStart, rep.loadEnd)
	w("- command: `go run ./bench/cmd/rshell-bench%s`\n", cmdFlags())
	if !advOnly {
		w("\nratio = rshell ÷ RPyC of the medians (for throughput: rshell's rate ÷ RPyC's, higher is better); for floor rows, rshell's eval_rtt ÷ that floor; for the throughput floor (floor_tcp_quiet_cN), its rate ÷ RPyC's throughput_cN; for the connect floor (floor_tls_connect), its median ÷ RPyC's connect.\n")
	}

	var all []*run
	all = append(all, rep.runs...)
	if rep.free != nil {
		all = append(all, rep.free)
	}
	type goalLine struct{ placement, metric, goal, measured, met string }
	var gl []goalLine
	for _, r := range all {
		if len(r.rows) == 0 {
			continue
		}
		goals(r, rep.cfg.idleN)
		w("\n## Placement: %s\n\n", placementDesc(r))
		w("| metric | rshell median | rshell p99 | RPyC median | RPyC p99 | ratio | goal | met? |\n")
		w("|---|---:|---:|---:|---:|---:|---|---|\n")
		for _, x := range r.rows {
			rsP99, rpP99 := x.fmtVal(x.rs, x.rs.p99), x.fmtVal(x.rp, x.rp.p99)
			if x.unit != "time" {
				rsP99, rpP99 = "—", "—"
				if x.rs.note != "" {
					rsP99 = x.rs.note
				}
				if x.rp.note != "" {
					rpP99 = x.rp.note
				}
			}
			if strings.HasPrefix(x.name, "cancel_latency") {
				rsP99 += fmt.Sprintf(" (max %s)", fmtTime(x.rs.max))
			}
			if !x.rp.ok {
				rpP99 = "—"
			}
			ratio := "—"
			if x.hasRatio {
				ratio = fmt.Sprintf("%.2f×", x.ratio)
			}
			met := ""
			if x.met != nil {
				met = "no"
				if *x.met {
					met = "yes"
				} else if x.floorRatio != 0 {
					met = fmt.Sprintf("no (the floor too: %.2f×)", x.floorRatio)
				}
			} else if x.goal != "" && !strings.HasPrefix(x.goal, "eval_rtt ÷") {
				met = "n/a"
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", x.name, x.fmtVal(x.rs, x.rs.median), rsP99, x.fmtVal(x.rp, x.rp.median), rpP99, ratio, x.goal, met)
			if met != "" {
				measured := ratio
				if strings.HasPrefix(x.name, "cancel_latency") {
					measured = "max " + fmtTime(x.rs.max) + ", median " + fmtTime(x.rs.median)
				}
				gl = append(gl, goalLine{r.placement, x.name, x.goal, measured, met})
			}
		}
		if len(r.notes) > 0 {
			w("\n")
			for _, n := range r.notes {
				w("- %s\n", n)
			}
		}
	}
	if rep.adv != nil {
		b.WriteString(rep.adv.markdown())
		for _, g := range rep.adv.goalRows() {
			gl = append(gl, goalLine{"adversarial", g[0], g[1], g[2], g[3]})
		}
	}
	w("\n## Goals\n\n| placement | metric | goal | measured | met? |\n|---|---|---|---|---|\n")
	for _, g := range gl {
		w("| %s | %s | %s | %s | %s |\n", g.placement, g.metric, g.goal, g.measured, g.met)
	}
	return b.String()
}

func cmdFlags() string {
	parts := append([]string(nil), os.Args[1:]...)
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
