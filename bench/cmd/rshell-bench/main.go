//go:build linux

// Command rshell-bench measures rshell side by side with RPyC classic in one
// run on one machine and prints one table with the ratios (issue 3).
//
//	go run ./bench/cmd/rshell-bench            # full run, both placements
//	go run ./bench/cmd/rshell-bench -quick     # the ~30 s CI smoke version
//	go run ./bench/cmd/rshell-bench -out bench/RESULTS.md
//
// It builds and starts `rshell serve` (TLS and token auth on, a state dir and
// token file of its own) and Debian's rpyc_classic on 127.0.0.1, pins
// servers and clients with taskset ("split": server on CPU 0, clients on
// CPU 1; "same": all on CPU 0), and runs every workload against both. The
// rshell clients are this binary re-executed (-role rshell-client); the
// RPyC clients are an embedded Python script run with /usr/bin/python3.
// When python3-rpyc or taskset is missing it runs the project's
// scripts/install-bench-deps.sh first (-no-install: it does not).
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

//go:embed rpyc_client.py
var rpycClientPy []byte

type config struct {
	quick        bool
	dur          time.Duration
	placements   []string
	out          string
	requireRPyC  bool
	noInstall    bool
	rshellBin    string
	evalN        int
	idleN        int
	connectProcs int
	skipIdle     bool
	cpuprofile   string
	trace        string
	inproc       bool
	memory       bool
	only         map[string]bool
	serverEnv    []string
	attackWindow time.Duration
	healthyCPU   string
	elsewhere    int // -attack-elsewhere: the second server's nice value; -1: none
}

// want says whether metric is selected by -only.
func (c config) want(metric string) bool { return len(c.only) == 0 || c.only[metric] }

// settleLimit bounds the wait for a quiet machine before each placement.
func (c config) settleLimit() time.Duration {
	if c.quick {
		return 2 * time.Second
	}
	return 20 * time.Second
}

func main() {
	var (
		role                        = flag.String("role", "", "internal: the part this process plays (rshell-client, rshell-server, floor-server, floor-client, healthy, attacker)")
		addr, tokenFile, fp, stateD string
		workload                    string
		n, reps                     int
		maxConns                    int
		source                      string
		noDeadlineWait              bool
	)
	flag.StringVar(&addr, "addr", "", "internal: server address")
	flag.StringVar(&tokenFile, "token-file", "", "internal: token file")
	flag.StringVar(&fp, "fp", "", "internal: server certificate fingerprint")
	flag.StringVar(&stateD, "state-dir", "", "internal: server state dir")
	flag.StringVar(&workload, "w", "", "internal: workload")
	flag.IntVar(&n, "n", 0, "internal: samples / connections")
	flag.IntVar(&reps, "reps", 3, "internal: repetitions")
	flag.IntVar(&maxConns, "max-conns", 20000, "internal: server connection limit")
	flag.StringVar(&source, "source", "", "internal: local address an attacker dials from")
	flag.BoolVar(&noDeadlineWait, "no-deadline-wait", false, "internal: an attacker does not wait for the server's handshake deadline")

	var cfg config
	var placement string
	flag.BoolVar(&cfg.quick, "quick", false, "the CI smoke version (~30 s): fewer samples, placement split, 200 idle connections, no throughput_c64")
	flag.DurationVar(&cfg.dur, "duration", 0, "duration of each throughput run (default 3s, 0.5s with -quick)")
	flag.StringVar(&placement, "placement", "", "split, same or both (default both; split with -quick)")
	flag.StringVar(&cfg.out, "out", "", "also write the results as markdown to this file")
	flag.BoolVar(&cfg.noInstall, "no-install", false, "do not run scripts/install-bench-deps.sh when RPyC or taskset is missing")
	flag.BoolVar(&cfg.requireRPyC, "require-rpyc", false, "fail when RPyC is not installed instead of measuring rshell alone")
	flag.StringVar(&cfg.rshellBin, "rshell", "", "use this rshell binary instead of building ./cmd/rshell")
	flag.IntVar(&cfg.evalN, "eval-n", 0, "eval_rtt samples (default 5000; 500 with -quick)")
	flag.IntVar(&cfg.idleN, "idle", 0, "idle connections for idle_conn_rss (default 10000; 200 with -quick)")
	flag.BoolVar(&cfg.skipIdle, "skip-idle", false, "skip idle_conn_rss")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the rshell server to this file (runs the server package in-process instead of the rshell binary)")
	flag.StringVar(&cfg.trace, "trace", "", "write a Go execution trace of the rshell server to this file (runs the server package in-process instead of the rshell binary; read it with go tool trace)")
	flag.BoolVar(&cfg.memory, "memory-sessions", false, "run the server with --state-dir none (sessions in memory only) instead of durable sessions, the default")
	flag.BoolVar(&cfg.inproc, "inproc-server", false, "run the server package in a process of this binary instead of the rshell binary")
	flag.DurationVar(&cfg.attackWindow, "attack-window", 0, "adversarial suite: how long the healthy client measures, with no attack and under each attack (default 3s, 200ms with -quick)")
	flag.StringVar(&cfg.healthyCPU, "healthy-cpu", "1", "adversarial suite: the CPU of the healthy client (attackers are on CPU 1, the server on CPU 0)")
	flag.IntVar(&cfg.elsewhere, "attack-elsewhere", -1, "adversarial suite, a diagnostic: the attackers target a second server on CPU 0 at this nice value (0-19), not the healthy client's")
	var only, serverEnv string
	flag.StringVar(&only, "only", "", "comma-separated metrics to run (default all), e.g. -only eval_rtt,replicate_N100000; adversarial runs the attack suite, adversarial_KIND one attack")
	flag.StringVar(&serverEnv, "server-env", "", "extra environment for the rshell server, comma-separated (experiments, e.g. GOMAXPROCS=2)")
	var dur time.Duration
	flag.DurationVar(&dur, "d", time.Second, "internal: throughput duration")
	flag.Parse()

	if only != "" {
		cfg.only = map[string]bool{}
		for _, m := range strings.Split(only, ",") {
			cfg.only[strings.TrimSpace(m)] = true
		}
	}
	if serverEnv != "" {
		cfg.serverEnv = strings.Split(serverEnv, ",")
	}
	var err error
	switch *role {
	case "rshell-client":
		err = runClient(clientArgs{addr: addr, tokenFile: tokenFile, fp: fp, workload: workload, n: n, reps: reps, dur: dur})
	case "rshell-server":
		err = runFallbackServer(addr, tokenFile, stateD, maxConns, cfg.cpuprofile, cfg.trace, cfg.memory)
	case "floor-server":
		err = runFloorServer()
	case "floor-client":
		switch workload {
		case "rate":
			err = runFloorRate(addr, dur)
		case "connect":
			err = runFloorConnect(addr, n)
		default:
			err = runFloorClient(workload, addr, n)
		}
	case "healthy":
		err = runHealthy(addr, tokenFile, fp)
	case "attacker":
		err = runAttacker(attackArgs{addr: addr, tokenFile: tokenFile, fp: fp, kind: workload, n: n, source: source, noDeadlineWait: noDeadlineWait})
	case "":
		err = orchestrate(cfg, placement)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rshell-bench:", err)
		os.Exit(1)
	}
}

func orchestrate(cfg config, placement string) (err error) {
	if cfg.elsewhere > 19 || cfg.elsewhere < -1 {
		return fmt.Errorf("-attack-elsewhere %d: give a nice value from 0 to 19", cfg.elsewhere)
	}
	if placement == "" {
		placement = "both"
		if cfg.quick {
			placement = "split"
		}
	}
	switch placement {
	case "split", "same":
		cfg.placements = []string{placement}
	case "both":
		cfg.placements = []string{"split", "same"}
	default:
		return fmt.Errorf("-placement must be split, same or both, not %q", placement)
	}
	if cfg.dur == 0 {
		cfg.dur = 3 * time.Second
		if cfg.quick {
			cfg.dur = 300 * time.Millisecond
		}
	}
	if cfg.evalN == 0 {
		cfg.evalN = 5000
		if cfg.quick {
			cfg.evalN = 300
		}
	}
	if cfg.idleN == 0 {
		cfg.idleN = 10000
		if cfg.quick {
			cfg.idleN = 200
		}
	}
	if cfg.attackWindow == 0 {
		cfg.attackWindow = 3 * time.Second
		if cfg.quick {
			cfg.attackWindow = 200 * time.Millisecond
		}
	}
	cfg.connectProcs = 2
	if cfg.quick {
		cfg.connectProcs = 1
	}

	// Children must never outlive the harness: kill them on every return
	// and on SIGINT/SIGTERM.
	defer killAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		killAll()
		fmt.Fprintf(os.Stderr, "rshell-bench: %v: children killed\n", s)
		os.Exit(130)
	}()

	raiseNoFile()
	ctx := context.Background()
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return err
	}
	defer h.cleanup()

	start := time.Now()
	rep := &report{cfg: cfg, machine: machineInfo(), rpyc: h.rpycInfo, server: h.serverInfo, date: start, loadStart: loadAvg()}
	// The free placement goes first: its cancel_latency_2cpu is a worst
	// case over 30 cancels, and right after the placements (64 client
	// processes, 10,000 connections and RPyC's 10,000 threads being torn
	// down) its worst case was 2.3-4.9 ms in three full runs, against
	// 1.06-1.50 ms in six runs of it alone, of the same code.
	settled := settle(cfg.settleLimit())
	fmt.Fprintln(os.Stderr, "settle:", settled)
	free, err := h.runFree(ctx)
	if err != nil {
		return fmt.Errorf("placement free: %w", err)
	}
	free.notes = append([]string{"before it: " + settled}, free.notes...)
	rep.free = free
	for i, pl := range cfg.placements {
		if cfg.onlyAdversarial() {
			break
		}
		settled := settle(cfg.settleLimit())
		fmt.Fprintln(os.Stderr, "settle:", settled)
		res, err := h.runPlacement(ctx, pl, i == 0 && !cfg.skipIdle)
		if res != nil {
			res.notes = append([]string{"before it: " + settled}, res.notes...)
			rep.runs = append(rep.runs, res)
		}
		if err != nil {
			return fmt.Errorf("placement %s: %w", pl, err)
		}
	}
	if cfg.wantAdversarial("") {
		fmt.Fprintln(os.Stderr, "settle:", settle(cfg.settleLimit()))
		if rep.adv, err = h.adversarial(ctx); err != nil {
			return fmt.Errorf("adversarial: %w", err)
		}
	}
	rep.elapsed = time.Since(start)
	rep.loadEnd = loadAvg()
	md := rep.markdown()
	fmt.Println(md)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", cfg.out)
	}
	if cfg.cpuprofile != "" {
		fmt.Fprintln(os.Stderr, "server CPU profile (last placement run):", cfg.cpuprofile)
	}
	if cfg.trace != "" {
		fmt.Fprintln(os.Stderr, "server execution traces:", cfg.trace+".<placement>")
	}
	return nil
}

// raiseNoFile lifts the soft limit on open files to the hard limit, for
// this process and (because it is set explicitly) for every child.
func raiseNoFile() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}

func noFileLimit() uint64 {
	var r syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}

func machineInfo() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return model
}
