//go:build linux

package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rshell/rshell/transport"
)

const pythonPath = "/usr/bin/python3" // Debian's python, which sees python3-rpyc

type harness struct {
	cfg        config
	tmp        string
	self       string
	rshellBin  string // "" = the server package in a process of this binary
	serverInfo string
	rpycServer string // "" = RPyC not installed
	rpycScript string
	rpycInfo   string
}

func newHarness(ctx context.Context, cfg config) (*harness, error) {
	tmp, err := os.MkdirTemp("", "rshell-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{cfg: cfg, tmp: tmp}
	if h.self, err = os.Executable(); err != nil {
		h.cleanup()
		return nil, err
	}
	h.rpycScript = filepath.Join(tmp, "rpyc_client.py")
	if err := os.WriteFile(h.rpycScript, rpycClientPy, 0o644); err != nil {
		h.cleanup()
		return nil, err
	}
	h.findRPyC(ctx)
	if (h.rpycServer == "" || tasksetPath == "") && !cfg.noInstall {
		if err := installDeps(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "install:", err)
		}
		h.findRPyC(ctx)
	}
	if h.rpycServer == "" {
		if cfg.requireRPyC {
			h.cleanup()
			return nil, fmt.Errorf("rpyc: %s (scripts/install-bench-deps.sh installs it; it needs root or sudo)", h.rpycInfo)
		}
		fmt.Fprintf(os.Stderr, "rpyc: %s — measuring rshell alone (scripts/install-bench-deps.sh installs it)\n", h.rpycInfo)
	} else {
		fmt.Fprintln(os.Stderr, "rpyc:", h.rpycInfo)
	}
	if tasksetPath == "" {
		fmt.Fprintln(os.Stderr, "taskset not found: processes are NOT pinned (scripts/install-bench-deps.sh installs util-linux)")
	}
	h.findRShell(ctx)
	fmt.Fprintln(os.Stderr, "server:", h.serverInfo)
	fmt.Fprintf(os.Stderr, "open files limit: %d\n", noFileLimit())
	return h, nil
}

func (h *harness) cleanup() {
	killAll()
	if h.tmp != "" {
		_ = os.RemoveAll(h.tmp)
	}
}

func (h *harness) findRPyC(ctx context.Context) {
	out, err := exec.CommandContext(ctx, pythonPath, "-c", "import rpyc; print(rpyc.__version__)").Output()
	if err != nil {
		h.rpycInfo = "not installed (" + pythonPath + " cannot import rpyc)"
		return
	}
	version := strings.TrimSpace(string(out))
	cands := []string{"/usr/bin/rpyc_classic", "/usr/bin/rpyc_classic.py"}
	if l, err := exec.CommandContext(ctx, "dpkg", "-L", "python3-rpyc").Output(); err == nil {
		for _, p := range strings.Fields(string(l)) {
			if b := filepath.Base(p); (b == "rpyc_classic" || b == "rpyc_classic.py") && strings.Contains(p, "/bin/") {
				cands = append(cands, p)
			}
		}
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			h.rpycServer = c
			h.rpycInfo = fmt.Sprintf("RPyC %s classic server %s (threaded, one thread per connection), %s", version, c, pythonVersion(ctx))
			return
		}
	}
	h.rpycInfo = "not installed (rpyc " + version + " importable but no rpyc_classic server script)"
}

func pythonVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, pythonPath, "--version").CombinedOutput()
	if err != nil {
		return pythonPath
	}
	return strings.TrimSpace(string(out))
}

// findRShell builds ./cmd/rshell (or takes -rshell); when that fails, the
// server package runs in a process of this binary instead.
func (h *harness) findRShell(ctx context.Context) {
	switch {
	case h.cfg.cpuprofile != "" || h.cfg.trace != "":
		h.serverInfo = "server package in a process of rshell-bench (-cpuprofile or -trace), configured as `rshell serve` is"
		return
	case h.cfg.inproc:
		h.serverInfo = "server package in a process of rshell-bench (-inproc-server), configured as `rshell serve` is"
		return
	case h.cfg.rshellBin != "":
		h.rshellBin = h.cfg.rshellBin
		h.serverInfo = "`" + h.rshellBin + " serve` (TLS 1.3, token auth)"
		return
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		h.serverInfo = "server package in a process of rshell-bench (no go.mod found to build cmd/rshell)"
		return
	}
	bin := filepath.Join(h.tmp, "rshell")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/rshell")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		h.serverInfo = "server package in a process of rshell-bench, because cmd/rshell did not build (" + first + ")"
		return
	}
	h.rshellBin = bin
	h.serverInfo = "`rshell serve` built from ./cmd/rshell (TLS 1.3, token auth, --max-conns 20000)"
}

// ---- servers ----

type rsServer struct {
	p                 *proc
	addr, token, fp   string
	stateDir, profile string
}

var addrRE = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

func (h *harness) startRShell(ctx context.Context, cpus, name string) (*rsServer, error) {
	dir := filepath.Join(h.tmp, name)
	s := &rsServer{token: filepath.Join(dir, "token"), stateDir: filepath.Join(dir, "state")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The server's XDG directories point into the temp dir, so nothing of
	// the user's is read or written.
	env := append([]string{"XDG_STATE_HOME=" + filepath.Join(dir, "xdg-state"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config")}, h.cfg.serverEnv...)
	certDir := filepath.Join(s.stateDir, "tls")
	var err error
	if h.rshellBin != "" {
		stateArg := s.stateDir
		if h.cfg.memory {
			stateArg, certDir = "none", filepath.Join(dir, "xdg-state", "rshell", "tls")
		}
		s.p, err = startEnv(ctx, env, cpus, h.rshellBin, "serve", "--listen", "127.0.0.1:0", "--token-file", s.token,
			"--state-dir", stateArg, "--max-conns", "20000")
	} else {
		args := []string{"-role", "rshell-server", "-addr", "127.0.0.1:0", "-token-file", s.token, "-state-dir", s.stateDir, "-max-conns", "20000"}
		if h.cfg.memory {
			args = append(args, "-memory-sessions")
		}
		if h.cfg.cpuprofile != "" {
			s.profile = h.cfg.cpuprofile + "." + name
			args = append(args, "-cpuprofile", s.profile)
		}
		if h.cfg.trace != "" {
			args = append(args, "-trace", h.cfg.trace+"."+name)
		}
		s.p, err = startEnv(ctx, env, cpus, h.self, args...)
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(s.p.stderr.String()); m != nil {
			s.addr = m[1]
			break
		}
		if s.p.cmd.ProcessState != nil || time.Now().After(deadline) {
			s.p.stop()
			return nil, fmt.Errorf("rshell serve did not start: %s", s.p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(certDir, "cert.pem"))
	if err != nil {
		s.p.stop()
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		s.p.stop()
		return nil, errors.New("no certificate in " + filepath.Join(certDir, "cert.pem"))
	}
	s.fp = transport.Fingerprint(blk.Bytes)
	return s, nil
}

type rpServer struct {
	p    *proc
	port int
	// caFile, when not "", is the certificate of a server started with
	// RPyC's own TLS (rpyc_classic --ssl-certfile/--ssl-keyfile); clients
	// connect with rpyc.classic.ssl_connect and verify against it.
	caFile string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRPyC starts rpyc_classic; with withTLS, over RPyC's own TLS, with a
// self-signed ECDSA P-256 certificate made as rshell makes its own.
func (h *harness) startRPyC(ctx context.Context, cpus string, withTLS bool) (*rpServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{h.rpycServer, "--host", "127.0.0.1", "-p", strconv.Itoa(port), "-q"}
	var caFile string
	if withTLS {
		dir := filepath.Join(h.tmp, "rpyc-tls")
		if _, err := transport.LoadOrCreateCert(dir); err != nil {
			return nil, fmt.Errorf("certificate for RPyC's TLS: %w", err)
		}
		caFile = filepath.Join(dir, "cert.pem")
		args = append(args, "--ssl-certfile", caFile, "--ssl-keyfile", filepath.Join(dir, "key.pem"))
	}
	p, err := start(ctx, cpus, pythonPath, args...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return &rpServer{p: p, port: port, caFile: caFile}, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("rpyc_classic did not start: %s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- clients ----

func (h *harness) rsClientProc(ctx context.Context, cpus string, s *rsServer, w string, n, reps int) (*proc, error) {
	return start(ctx, cpus, h.self, "-role", "rshell-client", "-addr", s.addr, "-token-file", s.token, "-fp", s.fp,
		"-w", w, "-n", strconv.Itoa(n), "-reps", strconv.Itoa(reps), "-d", h.cfg.dur.String())
}

func (h *harness) rpClientProc(ctx context.Context, cpus string, s *rpServer, w string, n, reps int) (*proc, error) {
	args := []string{h.rpycScript, "--port", strconv.Itoa(s.port), "--workload", w,
		"--n", strconv.Itoa(n), "--reps", strconv.Itoa(reps), "--dur", strconv.FormatFloat(h.cfg.dur.Seconds(), 'f', 3, 64)}
	if s.caFile != "" {
		args = append(args, "--ssl-ca", s.caFile)
	}
	return start(ctx, cpus, pythonPath, args...)
}

// collect reads a client's JSON result and waits for it to exit.
func collect(p *proc, timeout time.Duration) (clientResult, error) {
	return collectJSON[clientResult](p, timeout, "client")
}

// collectJSON waits (at most timeout) for a child to exit and decodes the
// last line it printed, a JSON T.
func collectJSON[T any](p *proc, timeout time.Duration, who string) (T, error) {
	var r T
	t := time.AfterFunc(timeout, func() { p.stop() })
	defer t.Stop()
	out, _ := io.ReadAll(p.stdout)
	if err := p.wait(); err != nil {
		return r, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return r, fmt.Errorf("%s output %q: %w", who, out, err)
	}
	return r, nil
}

func runOne(ctx context.Context, mk func(context.Context) (*proc, error)) (clientResult, error) {
	p, err := mk(ctx)
	if err != nil {
		return clientResult{}, err
	}
	return collect(p, 10*time.Minute)
}

// throughputRun starts n client processes, waits until each is connected
// and warm ("ready"), tells all to go at once and adds up their rates.
// serverPID, when not 0, is the server whose CPU use per operation is
// reported (cpuPerOp).
func throughputRun(ctx context.Context, n, serverPID int, mk func(context.Context) (*proc, error)) (rate float64, cpuPerOp, clientCPUPerOp time.Duration, err error) {
	ps := make([]*proc, 0, n)
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	for range n {
		p, err := mk(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		l, err := p.readLine(5 * time.Minute)
		if err != nil {
			return 0, 0, 0, err
		}
		if l != "ready" {
			return 0, 0, 0, fmt.Errorf("client said %q, not ready", l)
		}
	}
	cpu0 := procCPU(serverPID)
	for _, p := range ps {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			return 0, 0, 0, err
		}
	}
	var ops, clientCPU int64
	for _, p := range ps {
		r, err := collect(p, 5*time.Minute)
		if err != nil {
			return 0, 0, 0, err
		}
		if r.Seconds > 0 {
			rate += float64(r.Ops) / r.Seconds
		}
		ops += r.Ops
		clientCPU += r.CPU
	}
	cpu := procCPU(serverPID) - cpu0
	ps = ps[:0]
	if ops > 0 {
		cpuPerOp = cpu / time.Duration(ops)
		clientCPUPerOp = time.Duration(clientCPU / ops)
	}
	return rate, cpuPerOp, clientCPUPerOp, nil
}

// idleResult is the server-side cost of n idle connections.
type idleResult struct {
	n                int
	rss0, rss1       int64
	threads0, thread int
}

func (r idleResult) perConn() float64 { return float64(r.rss1-r.rss0) / float64(r.n) }

// idleRun measures the server's RSS and threads, has one client process
// open n connections and hold them, lets the server settle (gc, when
// given, runs a collection in the server), and measures again.
func idleRun(ctx context.Context, serverPID, n int, settle time.Duration, mk func(context.Context) (*proc, error), gc func() error) (idleResult, error) {
	r := idleResult{n: n}
	if gc != nil {
		if err := gc(); err != nil {
			return r, err
		}
	}
	time.Sleep(settle)
	var err error
	if r.rss0, r.threads0, err = procStatus(serverPID); err != nil {
		return r, err
	}
	p, err := mk(ctx)
	if err != nil {
		return r, err
	}
	defer p.stop()
	l, err := p.readLine(15 * time.Minute)
	if err != nil {
		return r, err
	}
	if l != fmt.Sprintf("ready %d", n) {
		return r, fmt.Errorf("idle holder: %s", l)
	}
	if gc != nil {
		if err := gc(); err != nil {
			return r, err
		}
	}
	time.Sleep(settle)
	if r.rss1, r.thread, err = procStatus(serverPID); err != nil {
		return r, err
	}
	_ = p.stdin.Close()
	_, _ = collect(p, time.Minute)
	return r, nil
}

// rpycGC runs gc.collect() in the RPyC server over a short-lived connection.
func (h *harness) rpycGC(ctx context.Context, port int) func() error {
	return func() error {
		src := fmt.Sprintf("import rpyc; c = rpyc.classic.connect('127.0.0.1', %d); c.modules.gc.collect(); c.close()", port)
		out, err := exec.CommandContext(ctx, pythonPath, "-c", src).CombinedOutput()
		if err != nil {
			return fmt.Errorf("rpyc gc: %v: %s", err, out)
		}
		return nil
	}
}
