//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestExecNetworkNamespaces runs `rshell exec` against real servers, each
// in a network namespace of its own with its own address, joined to the
// root namespace by a veth pair: the fleet of issue 7 on addresses that
// are not loopback, TLS on, a token file per host and pinned fingerprints
// in the config file. It needs root and the ip command (Debian: iproute2,
// scripts/install-deps.sh) and skips without them.
//
// Everything it makes carries the test process's pid in its name
// (rsh<pid>h1 for a namespace, rsh<pid>a1/rsh<pid>b1 for the two ends of a
// veth pair), so parallel runs never collide, and is removed in cleanups
// that run even when the test fails.
func TestExecNetworkNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command on PATH (Debian package iproute2; scripts/install-deps.sh installs it)")
	}
	bin := binary(t) // skips in -short mode
	lab := &netnsLab{t: t, ip: ipCmd, prefix: fmt.Sprintf("rsh%d", os.Getpid())}
	t.Cleanup(lab.checkLeftovers) // registered first: runs after every other cleanup
	lab.probe()
	subnet := lab.pickSubnet()

	const nHosts = 4
	home := t.TempDir()
	configDir := filepath.Join(home, "config")
	rshellDir := filepath.Join(configDir, "rshell")
	if err := os.MkdirAll(filepath.Join(rshellDir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(filteredEnv(), "HOME="+home, "XDG_CONFIG_HOME="+configDir,
		"XDG_STATE_HOME="+filepath.Join(home, "state"), "TERM=xterm")

	var cfg strings.Builder
	hosts := make([]netnsHost, nHosts)
	for i := range hosts {
		n := i + 1
		h := &hosts[i]
		h.name = fmt.Sprintf("ns%d", n)
		h.ns = fmt.Sprintf("%sh%d", lab.prefix, n)
		h.vethRoot = fmt.Sprintf("%sa%d", lab.prefix, n)
		h.vethNS = fmt.Sprintf("%sb%d", lab.prefix, n)
		// a /30 of the /24 for each host: .4n+1 in the root namespace, .4n+2 in its own
		rootIP := fmt.Sprintf("%s.%d", subnet, 4*n+1)
		h.ip = fmt.Sprintf("%s.%d", subnet, 4*n+2)
		h.addr = h.ip + ":18812" // each namespace has its own ports
		lab.addNamespace(h.ns)
		lab.addVeth(h.vethRoot, h.vethNS, h.ns)
		lab.must("addr", "add", rootIP+"/30", "dev", h.vethRoot)
		lab.must("link", "set", h.vethRoot, "up")
		lab.must("-n", h.ns, "addr", "add", h.ip+"/30", "dev", h.vethNS)
		lab.must("-n", h.ns, "link", "set", h.vethNS, "up")
		lab.must("-n", h.ns, "link", "set", "lo", "up")

		tokenFile := filepath.Join(rshellDir, "tokens", h.name)
		if err := os.WriteFile(tokenFile, []byte(randomToken()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h.fingerprint = lab.startServer(h, env, bin, "serve", "--listen", h.addr,
			"--token-file", tokenFile, "--state-dir", t.TempDir())
		fmt.Fprintf(&cfg, "[[hosts]]\nname = %q\naddress = %q\ntoken_file = %q\nfingerprint = %q\n\n",
			h.name, h.addr, "tokens/"+h.name, h.fingerprint)
	}
	fmt.Fprintf(&cfg, "[groups]\nns = [\"ns[1-%d]\"]\n", nHosts)
	if err := os.WriteFile(filepath.Join(rshellDir, "config.toml"), []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// Equal results on every host fold into one line.
	out, errs, code, _ := lab.rshell(env, "exec", "@ns", "-e", "6 * 7")
	if want := fmt.Sprintf("ns[1-%d] (%d): 42\n", nHosts, nHosts); code != 0 || out != want || !strings.HasPrefix(errs, fmt.Sprintf("%d ok", nHosts)) {
		t.Errorf("gathered: status %d, stdout %q (want %q), stderr %q", code, out, want, errs)
	}

	// A value that differs per host: each server sees only its own
	// namespace's interfaces (ip netns exec mounts a /sys of the namespace).
	const ifaces = `os.listdir("/sys/class/net")`
	out, errs, code, _ = lab.rshell(env, "exec", "@ns", "-e", ifaces)
	if code != 0 {
		t.Errorf("per host: status %d, stderr %q", code, errs)
	}
	for _, h := range hosts {
		if want := fmt.Sprintf("%s: [\"lo\", %q]\n", h.name, h.vethNS); !strings.Contains(out, want) {
			t.Errorf("per host: no %q in stdout %q", want, out)
		}
	}

	// JSON lines: one per host.
	out, errs, code, _ = lab.rshell(env, "exec", "@ns", "-e", ifaces, "--json")
	if code != 0 {
		t.Errorf("--json: status %d, stderr %q", code, errs)
	}
	byHost := execJSONLines(t, out)
	if len(byHost) != nHosts {
		t.Errorf("--json: %d hosts in %q", len(byHost), out)
	}
	for _, h := range hosts {
		j, ok := byHost[h.name]
		if !ok {
			continue
		}
		want := []any{"lo", h.vethNS}
		if !j.OK || j.Status != "ok" || j.Address != h.addr || fmt.Sprint(j.Value) != fmt.Sprint(want) || j.Error != nil || j.DurationMS == nil {
			t.Errorf("--json %s: %+v, want ok with value %v from %s", h.name, j, want, h.addr)
		}
	}

	// Partial failure: one host's link goes down, so its address is
	// unreachable (the kernel finds no neighbour for it: "no route to
	// host" after a few seconds of ARP). exec reports it, the others are
	// ok, and it returns: --timeout bounds the dial too (exec has no
	// separate connect timeout).
	const timeout = 5 * time.Second
	bounded := func(what string, took time.Duration) {
		t.Helper()
		t.Logf("%s: exec returned after %v", what, took.Round(time.Millisecond))
		if limit := timeout + 10*time.Second; took > limit { // generous: the point is that it returns
			t.Errorf("%s: exec took %v with --timeout %v", what, took, timeout)
		}
	}
	down := hosts[2]
	lab.must("-n", down.ns, "link", "set", down.vethNS, "down")
	out, errs, code, took := lab.rshell(env, "exec", "@ns", "-e", "6 * 7", "--timeout", timeout.String())
	bounded(down.name+" down", took)
	if want := fmt.Sprintf("ns[1-2,4] (%d): 42\n", nHosts-1); code != 2 || out != want || !strings.Contains(errs, down.name+": unreachable (") {
		t.Errorf("partial: status %d (want 2), stdout %q (want %q), stderr %q (want %s unreachable)", code, out, want, errs, down.name)
	}

	// And a host that silently drops everything (its address resolves to
	// a MAC nobody has, as a host gone behind a router): nothing tells the
	// client, so only --connect-timeout (no chunk deadline this time) ends
	// the wait for it.
	silent := hosts[3]
	lab.must("neigh", "replace", silent.ip, "lladdr", "02:00:00:00:00:01", "dev", silent.vethRoot, "nud", "permanent")
	out, errs, code, took = lab.rshell(env, "exec", "@ns", "-e", "6 * 7", "--connect-timeout", "2s", "--json")
	bounded(down.name+" down and "+silent.name+" silent", took)
	byHost = execJSONLines(t, out)
	if code != 2 || len(byHost) != nHosts {
		t.Errorf("partial --json: status %d (want 2), %d lines (want %d): %q %q", code, len(byHost), nHosts, out, errs)
	}
	for _, h := range hosts {
		j, ok := byHost[h.name]
		switch {
		case !ok:
		case h.name == down.name || h.name == silent.name:
			if j.OK || j.Status != "unreachable" || j.Error == nil || *j.Error == "" || j.DurationMS == nil || *j.DurationMS <= 0 {
				t.Errorf("partial --json %s: %+v, want unreachable with an error and the time spent", h.name, j)
			} else if h.name == silent.name && *j.Error != "no connection within 2s" {
				t.Errorf("silent host: error %q, want %q", *j.Error, "no connection within 2s")
			} else {
				t.Logf("%s: %s", h.name, *j.Error)
			}
		case !j.OK || j.Status != "ok" || fmt.Sprint(j.Value) != "42":
			t.Errorf("partial --json %s: %+v, want ok 42", h.name, j)
		}
	}
}

type netnsHost struct {
	name, ns, vethRoot, vethNS string
	ip, addr, fingerprint      string
}

// netnsLab makes network namespaces and veth pairs named after prefix and
// removes them again.
type netnsLab struct {
	t      *testing.T
	ip     string // path of the ip command
	prefix string // rsh<pid>

	mu      sync.Mutex
	created []string // "netns NAME" and "link NAME", for the leftover check
}

// ipCommand runs ip with args, bounded, and returns its combined output.
func (l *netnsLab) ipCommand(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, l.ip, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (l *netnsLab) must(args ...string) string {
	l.t.Helper()
	out, err := l.ipCommand(args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// probe skips the test unless a namespace and a veth pair can be made here
// (root in a container may lack CAP_SYS_ADMIN or the veth driver).
func (l *netnsLab) probe() {
	l.t.Helper()
	ns, a, b := l.prefix+"p", l.prefix+"pa", l.prefix+"pb"
	if _, err := l.ipCommand("netns", "add", ns); err != nil {
		l.t.Skipf("cannot make a network namespace: %v", err)
	}
	defer func() {
		if _, err := l.ipCommand("netns", "del", ns); err != nil {
			l.t.Errorf("probe: %v", err)
		}
	}()
	if _, err := l.ipCommand("link", "add", a, "type", "veth", "peer", "name", b, "netns", ns); err != nil {
		l.t.Skipf("cannot make a veth pair: %v", err)
	}
	if _, err := l.ipCommand("link", "del", a); err != nil {
		l.t.Errorf("probe: %v", err)
	}
}

// pickSubnet returns "10.213.X" for a /24 that no address or route of this
// machine uses, starting from one chosen by the pid.
func (l *netnsLab) pickSubnet() string {
	l.t.Helper()
	addrs := l.must("-o", "addr")
	routes := l.must("route", "show", "table", "all")
	start := os.Getpid() % 250
	for i := range 250 {
		s := fmt.Sprintf("10.213.%d", (start+i)%250+1)
		if !strings.Contains(addrs, s+".") && !strings.Contains(routes, s+".") {
			return s
		}
	}
	l.t.Skip("every 10.213.X.0/24 is in use on this machine")
	return ""
}

func (l *netnsLab) addNamespace(name string) {
	l.t.Helper()
	l.must("netns", "add", name)
	l.note("netns " + name)
	l.t.Cleanup(func() {
		if _, err := l.ipCommand("netns", "del", name); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	})
}

// addVeth makes a veth pair: root stays in the root namespace, peer goes
// into ns. Deleting root deletes both.
func (l *netnsLab) addVeth(root, peer, ns string) {
	l.t.Helper()
	l.must("link", "add", root, "type", "veth", "peer", "name", peer, "netns", ns)
	l.note("link " + root)
	l.t.Cleanup(func() {
		if _, err := l.ipCommand("link", "del", root); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	})
}

func (l *netnsLab) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created = append(l.created, s)
}

// checkLeftovers fails the test if a namespace or link it made is still
// there after the cleanups.
func (l *netnsLab) checkLeftovers() {
	l.mu.Lock()
	created := l.created
	l.mu.Unlock()
	if len(created) == 0 {
		return
	}
	nsList, err1 := l.ipCommand("netns", "list")
	links, err2 := l.ipCommand("-o", "link")
	if err := errors.Join(err1, err2); err != nil {
		l.t.Errorf("leftover check: %v", err)
		return
	}
	nsNames := map[string]bool{}
	for _, line := range strings.Split(nsList, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			nsNames[f[0]] = true
		}
	}
	linkNames := map[string]bool{}
	for _, line := range strings.Split(links, "\n") {
		// "7: NAME@if6: <...>"
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			linkNames[name] = true
		}
	}
	for _, c := range created {
		kind, name, _ := strings.Cut(c, " ")
		if (kind == "netns" && nsNames[name]) || (kind == "link" && linkNames[name]) {
			l.t.Errorf("left behind: %s %s", kind, name)
		}
	}
}

var netnsStartedRE = regexp.MustCompile(`server started on \S+ \(tls (sha256:[A-Za-z0-9+/]+),`)

// netnsLog is a server's stderr; started is closed when the "server
// started" line (written whole by slog) has been seen.
type netnsLog struct {
	mu          sync.Mutex
	b           bytes.Buffer
	fingerprint string
	started     chan struct{}
}

func (w *netnsLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.fingerprint == "" {
		if m := netnsStartedRE.FindSubmatch(w.b.Bytes()); m != nil {
			w.fingerprint = string(m[1])
			close(w.started)
		}
	}
	return len(p), nil
}

func (w *netnsLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// startServer runs the binary in h's namespace (ip netns exec execs it, so
// the process is the server itself), waits for it to log that it started
// and returns its certificate's fingerprint. A cleanup kills it.
func (l *netnsLab) startServer(h *netnsHost, env []string, bin string, args ...string) string {
	l.t.Helper()
	cmd := exec.Command(l.ip, append([]string{"netns", "exec", h.ns, bin}, args...)...)
	cmd.Env = env
	logs := &netnsLog{started: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start server in %s: %v", h.ns, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	l.t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	select {
	case <-logs.started:
	case <-exited:
		l.t.Fatalf("server for %s (in %s) exited before it started:\n%s", h.addr, h.ns, logs.String())
	case <-time.After(15 * time.Second):
		l.t.Fatalf("server for %s (in %s) did not log \"server started\" within 15s:\n%s", h.addr, h.ns, logs.String())
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	return logs.fingerprint
}

// rshell runs the built binary with env under a generous bound, and
// returns its stdout, stderr, exit status and how long it took.
func (l *netnsLab) rshell(env []string, args ...string) (string, string, int, time.Duration) {
	l.t.Helper()
	const bound = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(l.t), args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader("")
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	took := time.Since(t0)
	if ctx.Err() != nil {
		l.t.Fatalf("rshell %s did not return within %v; stdout %q, stderr %q", strings.Join(args, " "), bound, out.String(), errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		l.t.Fatalf("rshell %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code, took
}

// execJSONLines parses exec --json output: one object per line, by host;
// a host twice is an error.
func execJSONLines(t *testing.T, out string) map[string]execJSONLine {
	t.Helper()
	byHost := map[string]execJSONLine{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var j execJSONLine
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Errorf("--json line %q: %v", sc.Text(), err)
			continue
		}
		if _, dup := byHost[j.Host]; dup {
			t.Errorf("--json: host %s twice in %q", j.Host, out)
		}
		byHost[j.Host] = j
	}
	return byHost
}
