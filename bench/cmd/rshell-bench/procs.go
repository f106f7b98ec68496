//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Every child process the harness starts is registered here, so that an
// early return, a failure or a signal still ends all of them: each child
// runs in its own process group and the whole group is killed.
var children struct {
	sync.Mutex
	set map[*exec.Cmd]struct{}
}

func track(c *exec.Cmd) {
	children.Lock()
	defer children.Unlock()
	if children.set == nil {
		children.set = map[*exec.Cmd]struct{}{}
	}
	children.set[c] = struct{}{}
}

func untrack(c *exec.Cmd) {
	children.Lock()
	defer children.Unlock()
	delete(children.set, c)
}

// killAll ends every child process group still registered.
func killAll() {
	children.Lock()
	defer children.Unlock()
	for c := range children.set {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}
}

var tasksetPath, _ = exec.LookPath("taskset")

// command builds a child process pinned to cpus ("" = not pinned). It
// runs in its own process group; cancelling ctx kills the group.
func command(ctx context.Context, cpus, name string, args ...string) *exec.Cmd {
	if cpus != "" && tasksetPath != "" {
		args = append([]string{"-c", cpus, name}, args...)
		name = tasksetPath
	}
	c := exec.CommandContext(ctx, name, args...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	return c
}

// proc is a started child with line-oriented stdin/stdout.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *tailBuffer
	done   chan struct{}
}

func start(ctx context.Context, cpus, name string, args ...string) (*proc, error) {
	return startEnv(ctx, nil, cpus, name, args...)
}

// startEnv is start with extra environment variables (KEY=VALUE).
func startEnv(ctx context.Context, env []string, cpus, name string, args ...string) (*proc, error) {
	c := command(ctx, cpus, name, args...)
	if len(env) > 0 {
		c.Env = append(os.Environ(), env...)
	}
	p := &proc{cmd: c, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.Stderr = p.stderr
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	track(c)
	p.stdin, p.stdout = in, bufio.NewReaderSize(out, 1<<20)
	return p, nil
}

// wait waits for the process to exit (after its stdout is read to the end).
func (p *proc) wait() error {
	err := p.cmd.Wait()
	untrack(p.cmd)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(p.cmd.Args, " "), err, p.stderr.String())
	}
	return nil
}

// stop kills the process group and reaps it.
func (p *proc) stop() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		t := time.AfterFunc(3*time.Second, func() { _ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) })
		_ = p.cmd.Wait()
		t.Stop()
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	untrack(p.cmd)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// readLine reads one line of the child's stdout, failing after timeout.
func (p *proc) readLine(timeout time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := p.stdout.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return r.s, fmt.Errorf("%s: %v\n%s", strings.Join(p.cmd.Args, " "), r.err, p.stderr.String())
		}
		return r.s, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("%s: no answer within %s\n%s", strings.Join(p.cmd.Args, " "), timeout, p.stderr.String())
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procStatus reads VmRSS (bytes) and Threads from /proc/PID/status.
func procStatus(pid int) (rss int64, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rss, threads, nil
}

// procCPU is the CPU time (user + system) the process has used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// renice sets the nice value of every thread of process pid (setpriority
// on Linux sets one thread's).
func renice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("renice thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}
