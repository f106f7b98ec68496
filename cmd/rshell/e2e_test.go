//go:build !windows

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// These tests build the binary and drive it in a real terminal (a pty),
// typing keystrokes and reading the screen's bytes, with bounded waits.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rshell-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rshell")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// testEnv is a private home: config (token, known hosts) and state
// (history) directories of its own.
func testEnv(t *testing.T) []string {
	home := t.TempDir()
	return append(filteredEnv(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_STATE_HOME="+filepath.Join(home, "state"), "TERM=xterm")
}

func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "TERM", "NO_COLOR", "RSHELL_TOKEN_FILE":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// term is the binary running in a pty.
type term struct {
	t    *testing.T
	f    *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	pos  int // expect searches from here
	done chan struct{}
}

func startTerm(t *testing.T, env []string, args ...string) *term {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, f: f, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			tm.mu.Lock()
			tm.buf.Write(b[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
		<-tm.done
	})
	return tm
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.f, s); err != nil {
		tm.t.Fatal(err)
	}
}

// expect waits (at most 10 s) until s appears after the previous match
// and returns the bytes up to the end of the match.
func (tm *term) expect(s string) string {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tm.mu.Lock()
		all := tm.buf.String()
		tm.mu.Unlock()
		if i := strings.Index(all[tm.pos:], s); i >= 0 {
			got := all[tm.pos : tm.pos+i+len(s)]
			tm.pos += i + len(s)
			return got
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("no %q on the screen within 10s; after the last match:\n%q", s, all[tm.pos:])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// enter types line and Enter, and waits for the terminal to show it
// submitted (readline redraws the prompt at every key, so the prompt alone
// proves nothing).
func (tm *term) enter(line string) {
	tm.t.Helper()
	tm.send(line + "\r")
	tm.expect(line + "\r\n")
}

// wait waits for the process to exit and returns its exit code.
func (tm *term) wait() int {
	tm.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- tm.cmd.Wait() }()
	select {
	case err := <-errc:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			tm.t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		tm.t.Fatal("the shell did not exit within 10s")
	}
	return -1
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func TestE2ELocalShell(t *testing.T) {
	env := testEnv(t)
	tm := startTerm(t, env, "--color", "always")
	tm.expect("local> ")
	tm.enter("x = 21")
	tm.expect("local> ")
	tm.enter("x *= 2")
	tm.expect("local> ")
	tm.enter("x")
	if got := ansiRE.ReplaceAllString(tm.expect("local> "), ""); !strings.Contains(got, "42") {
		t.Errorf("x gave %q", got)
	}
	tm.enter(`scores = {"Foo": 11, "Bar": 100}`)
	tm.expect("local> ")
	tm.enter("scores")
	if got := ansiRE.ReplaceAllString(tm.expect("local> "), ""); !strings.Contains(got, `{"Foo": 11, "Bar": 100}`) {
		t.Errorf("scores gave %q", got)
	}
	tm.enter("y = 0")
	tm.expect("local> ")
	tm.enter("z = x/y")
	tb := tm.expect("local> ")
	if !strings.Contains(tb, "Remote traceback from local") {
		t.Errorf("no traceback in %q", tb)
	}
	if !regexp.MustCompile(`\x1b\[31[;m][^\n]*division by zero`).MatchString(tb) {
		t.Errorf("traceback not red: %q", tb)
	}

	// Ctrl-C stops a remote infinite loop and the prompt comes back.
	tm.enter("def spin():")
	tm.expect("... ")
	tm.enter("    print(\"spinning\")")
	tm.expect("... ")
	tm.enter("    while True: pass")
	tm.expect("... ")
	tm.send("\r")
	tm.expect("local> ")
	tm.enter("spin()")
	tm.expect("spinning")
	t0 := time.Now()
	tm.send("\x03")
	tm.expect("cancelled")
	tm.expect("local> ")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Ctrl-C took %v", d)
	}
	tm.enter("1 + 1")
	if got := ansiRE.ReplaceAllString(tm.expect("local> "), ""); !strings.Contains(got, "2") {
		t.Errorf("after Ctrl-C: %q", got)
	}

	// Up-arrow recalls a whole multi-line def.
	tm.enter("def tw(n):")
	tm.expect("... ")
	tm.enter("    return n * 2")
	tm.expect("... ")
	tm.send("\r")
	tm.expect("local> ")
	tm.enter("tw(21)")
	tm.expect("42")
	tm.expect("local> ")
	tm.send("\x1b[A\x1b[A") // Up, Up: past tw(21) to the def
	tm.expect("return n * 2")
	tm.send("\r")
	// Wait until the recalled def has run and the shell reads again: a
	// result only a finished chunk prints (typed while a chunk runs, keys
	// are echoed by the terminal itself and redrawn later).
	tm.send("'rea' + 'dy'\r")
	tm.expect(`"ready"`)
	tm.expect("local> ")
	tm.enter("tw(5)")
	// The result, not the next prompt: readline may redraw a prompt left
	// over from painting the recalled chunk before the result arrives, so
	// read prompts (a bounded few) until the result has been seen.
	var seen string
	for i := 0; i < 5 && !strings.Contains(seen, "10\r\n"); i++ {
		seen += ansiRE.ReplaceAllString(tm.expect("local> "), "")
	}
	if !strings.Contains(seen, "10\r\n") {
		t.Errorf("recalled def: tw(5) gave %q", seen)
	}

	// Ctrl-C at the prompt clears the line; Ctrl-D leaves.
	tm.send("this is not code")
	tm.send("\x03")
	tm.expect("^C")
	tm.expect("local> ")
	tm.send("\x04")
	if code := tm.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}

	// The history was kept: 0600, multi-line chunks whole.
	hist := filepath.Join(strings.TrimPrefix(env[len(env)-2], "XDG_STATE_HOME="), "rshell", "history")
	st, err := os.Stat(hist)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("history mode %v", st.Mode().Perm())
	}
	data, _ := os.ReadFile(hist)
	if !strings.Contains(string(data), `"def tw(n):\n    return n * 2"`) {
		t.Errorf("history file:\n%s", data)
	}
}

// serve starts `rshell serve` on a free loopback port and returns its
// address and process.
func serve(t *testing.T, env []string) (string, *exec.Cmd) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binary(t), "serve", "--listen", addr)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	started := make(chan struct{})
	go func() {
		b := make([]byte, 4096)
		var all []byte
		once := false
		for {
			n, err := stderr.Read(b)
			all = append(all, b[:n]...)
			if !once && bytes.Contains(all, []byte("server started")) {
				once = true
				close(started)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("rshell serve did not start")
	}
	return addr, cmd
}

// runBinary runs the built binary to completion with stdin and returns
// its stdout, stderr and exit status.
func runBinary(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestE2EPipe(t *testing.T) {
	env := testEnv(t)
	addr, _ := serve(t, env)
	run := func(input string) (string, string, int) {
		return runBinary(t, env, input, "connect", addr, "--trust-new-host")
	}
	out, errs, code := run("x = 21\nx *= 2\nx\n")
	if out != "42\n" || code != 0 {
		t.Errorf("got %q (stderr %q), status %d", out, errs, code)
	}
	out, errs, code = run("print('a')\n1/0\n'b'\n")
	if out != "a\n\"b\"\n" || code != 1 || !strings.Contains(errs, "division by zero") || strings.Contains(errs, "\x1b") {
		t.Errorf("failing script: out %q err %q status %d", out, errs, code)
	}
	_, errs, code = run("1\n")
	if code != 0 {
		t.Errorf("pinned host: %q %d", errs, code)
	}
	cmd := exec.Command(binary(t), "connect", addr, "--color", "purple")
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "--color must be auto, always or never") {
		t.Errorf("bad flag: %v %s", err, b)
	}
}

func TestE2ETrustAndLostHost(t *testing.T) {
	env := testEnv(t)
	addr, srv := serve(t, env)
	tm := startTerm(t, env, "connect", "web1="+addr)
	tm.expect("can't be established")
	tm.expect("[y/N] ")
	tm.send("y\r")
	tm.expect("connected to web1")
	tm.expect("web1> ")
	tm.enter("x = 1")
	tm.expect("web1> ")
	tm.send("half typed") // no Enter: the notice must not garble it
	tm.expect("half typed")
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	tm.expect("! lost web1")
	// readline redraws the prompt and the half-typed line below it.
	redraw := tm.expect("web1> half typed")
	if strings.Contains(redraw, "half typedweb1") {
		t.Errorf("garbled: %q", redraw)
	}
	tm.send("\x15x\r") // Ctrl-U, then use the lost host: the chunk waits for it
	tm.expect("waiting for web1 to come back")
	tm.send("\x03") // Ctrl-C stops waiting
	tm.expect("stopped waiting: web1 is still reconnecting")
	tm.expect("web1> ")
	tm.send(":quit\r")
	if code := tm.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestServeBadGCFlags(t *testing.T) {
	for _, tc := range []struct{ flag, value, want string }{
		{"--gc-headroom", "-1", "--gc-headroom must be between 0 and 16384 MiB, not -1"},
		{"--gc-headroom", "100000", "--gc-headroom must be between 0 and 16384 MiB, not 100000"},
		{"--alloc-rate", "-5", "--alloc-rate must be between 0 and 65536 MiB a second, not -5"},
		{"--alloc-rate", "100000", "--alloc-rate must be between 0 and 65536 MiB a second, not 100000"},
	} {
		cmd := exec.Command(binary(t), "serve", tc.flag, tc.value, "--listen", "127.0.0.1:0")
		cmd.Env = testEnv(t)
		b, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %v %s", tc.flag, tc.value, err, b)
		}
	}
}
