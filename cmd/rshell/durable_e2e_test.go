//go:build unix

package main

import (
	"bytes"
	"github.com/rshell/rshell/internal/testserver"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process tests of durable sessions: the built binary, real processes, a
// real kill -9, state dirs in t.TempDir().

// serverProc is `rshell serve` as a process that a test kills (by PID)
// and starts again on the same address and state dir.
type serverProc struct {
	t        *testing.T
	env      []string
	addr     string
	stateDir string
	args     []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
}

// lockedBuffer collects a process's output for bounded polling.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServerProc starts `rshell serve` with a state dir of its own on a
// free port; extra flags follow.
func startServerProc(t *testing.T, env []string, extra ...string) *serverProc {
	t.Helper()
	p := &serverProc{t: t, env: env, addr: freeAddr(t), stateDir: t.TempDir(), args: extra}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *serverProc) start() {
	p.t.Helper()
	args := append([]string{"serve", "--listen", p.addr, "--state-dir", p.stateDir}, p.args...)
	cmd := exec.Command(binary(p.t), args...)
	cmd.Env = p.env
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	cmd.Stdout = io.Discard
	// The port may still be held for a moment by the killed process's
	// listener; starting again is bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := cmd.Start(); err != nil {
			p.t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		for !strings.Contains(logs.String(), "server started") {
			select {
			case <-done:
				if strings.Contains(logs.String(), "cannot listen") && time.Now().Before(deadline) {
					goto retry
				}
				p.t.Fatalf("rshell serve exited:\n%s", logs.String())
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-done
				p.t.Fatalf("rshell serve did not start within 10s:\n%s", logs.String())
			}
		}
		p.mu.Lock()
		p.cmd, p.logs, p.done = cmd, logs, done
		p.mu.Unlock()
		return
	retry:
		cmd = exec.Command(binary(p.t), args...)
		cmd.Env = p.env
		logs = &lockedBuffer{}
		cmd.Stderr = logs
		cmd.Stdout = io.Discard
	}
}

// kill sends SIGKILL to the server (by its PID) and waits for it to die.
func (p *serverProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

func (p *serverProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logs == nil {
		return ""
	}
	return p.logs.String()
}

// waitLog polls the server's log (bounded) for s: the log is the only
// signal the server process gives.
func (p *serverProc) waitLog(s string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.log(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q in the server log within %s:\n%s", s, within, p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clean strips escape sequences from screen bytes.
func clean(s string) string { return ansiRE.ReplaceAllString(s, "") }

// defineState types x = 42 and a recursive def into the shell.
func defineState(tm *term, prompt string) {
	tm.enter("x = 42")
	tm.expect(prompt)
	tm.enter("def fib(n):")
	tm.expect("... ")
	tm.enter("    return n if n < 2 else fib(n-1) + fib(n-2)")
	tm.expect("... ")
	tm.send("\r")
	tm.expect(prompt)
}

// checkState checks that x is 42 and fib still works.
func checkState(t *testing.T, tm *term, prompt string) {
	t.Helper()
	tm.enter("x")
	if got := clean(tm.expect(prompt)); !strings.Contains(got, "42") {
		t.Errorf("x after the reconnection: %q", got)
	}
	tm.enter("fib(10)")
	if got := clean(tm.expect(prompt)); !strings.Contains(got, "55") {
		t.Errorf("fib(10) after the reconnection: %q", got)
	}
}

func TestDurableKillIdleServer(t *testing.T) {
	env := testEnv(t)
	srv := startServerProc(t, env)
	tm := startTerm(t, env, "connect", "web1="+srv.addr, "--trust-new-host")
	tm.expect("web1> ")
	defineState(tm, "web1> ")

	srv.kill()
	tm.expect("! lost web1")
	tm.expect("reconnecting…")
	srv.start()
	tm.expect("! web1 is back — session resumed, namespace intact")
	checkState(t, tm, "web1> ")
	tm.send(":quit\r")
	if code := tm.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestDurableKillMidChunk(t *testing.T) {
	env := testEnv(t)
	srv := startServerProc(t, env)
	tm := startTerm(t, env, "connect", "web1="+srv.addr, "--trust-new-host")
	tm.expect("web1> ")
	tm.enter("x = 1")
	tm.expect("web1> ")
	tm.enter(`print("sleeping"); time.sleep(30); x = 2`)
	tm.expect("sleeping")
	srv.kill()
	tm.expect("! lost web1")
	tm.expect("while a chunk was running")
	srv.start()
	tm.expect("! web1 is back — session resumed")
	tm.expect("! the chunk that was running when web1 was lost did not complete (the namespace is as after the last completed chunk)")
	tm.enter("x")
	if got := clean(tm.expect("web1> ")); !strings.HasPrefix(strings.TrimSpace(got), "1") || strings.Contains(got, "2") {
		t.Errorf("x after the restart: %q", got)
	}
}

func TestDurableNetworkCut(t *testing.T) {
	env := testEnv(t)
	const keepalive = time.Second
	srv := startServerProc(t, env, "--keepalive", keepalive.String())
	px := testserver.StartCutProxy(t, srv.addr)
	tm := startTerm(t, env, "connect", "web1="+px.Addr(), "--trust-new-host", "--keepalive", keepalive.String())
	tm.expect("web1> ")
	defineState(tm, "web1> ")

	t0 := time.Now()
	px.SetCut(true)
	tm.expect("! lost web1")
	detected := time.Since(t0)
	t.Logf("network cut detected after %v (keepalive %v)", detected.Round(time.Millisecond), keepalive)
	if detected > 2*keepalive+time.Second { // a second of slack for a loaded CI machine
		t.Errorf("the cut took %v to detect, more than two keepalive intervals (%v)", detected, 2*keepalive)
	}
	px.Restore()
	tm.expect("! web1 is back — session resumed, namespace intact")
	checkState(t, tm, "web1> ")
}

func TestDurableClientStopped(t *testing.T) {
	env := testEnv(t)
	const keepalive = time.Second
	srv := startServerProc(t, env, "--keepalive", keepalive.String(), "--write-timeout", keepalive.String())
	tm := startTerm(t, env, "connect", "web1="+srv.addr, "--trust-new-host", "--keepalive", keepalive.String())
	tm.expect("web1> ")
	defineState(tm, "web1> ")

	pid := tm.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped for longer than the keepalive: the server gives the silent
	// connection up (keepalive plus its write timeout).
	srv.waitLog("connection closed", 30*time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	tm.expect("! lost web1")
	tm.expect("! web1 is back — session resumed, namespace intact")
	checkState(t, tm, "web1> ")
}

func TestDurableSharedNamespace(t *testing.T) {
	env := testEnv(t)
	srv := startServerProc(t, env)
	a := startTerm(t, env, "connect", srv.addr, "--trust-new-host", "--ns", "team")
	prompt := srv.addr + "/team> "
	a.expect(prompt)
	a.enter("shared = [1, 2]")
	a.expect(prompt)
	a.enter(`print("only for a")`)
	a.expect(prompt)

	// A second client process sees the state, not the first one's output.
	b := startTerm(t, env, "connect", "w="+srv.addr, "--ns", "team")
	b.expect("w> ")
	b.enter("shared")
	if got := clean(b.expect("w> ")); !strings.Contains(got, "[1, 2]") {
		t.Errorf("second client: %q", got)
	}
	b.enter("shared.append(3)")
	b.expect("w> ")
	a.enter("shared")
	if got := clean(a.expect(prompt)); !strings.Contains(got, "[1, 2, 3]") {
		t.Errorf("first client after the second's change: %q", got)
	}
	b.mu.Lock()
	screen := b.buf.String()
	b.mu.Unlock()
	if strings.Contains(screen, "only for a") {
		t.Errorf("the second client saw the first one's output")
	}
	b.enter(":sessions")
	if got := clean(b.expect("w> ")); !strings.Contains(got, "team") || !strings.Contains(got, "CLIENTS") {
		t.Errorf(":sessions: %q", got)
	}

	// serve --list-sessions reaches the running server with its own
	// certificate and token.
	cmd := exec.Command(binary(t), "serve", "--list-sessions", "--listen", srv.addr, "--state-dir", srv.stateDir)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "team") || strings.Count(string(out), "\n") != 2 {
		t.Errorf("--list-sessions: %v\n%s", err, out)
	}
	srv.kill()
	cmd = exec.Command(binary(t), "serve", "--list-sessions", "--listen", srv.addr, "--state-dir", srv.stateDir)
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no rshell server answers at") {
		t.Errorf("--list-sessions without a server: %v\n%s", err, out)
	}
}
