//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestReniceEveryThread renices a real multi-threaded process (this test
// binary, re-executed to wait for its stdin to close) and reads each
// thread's nice value back; this process's threads stay as they were.
func TestReniceEveryThread(t *testing.T) {
	if os.Getenv("RENICE_HELPER") == "1" {
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReniceEveryThread$")
	cmd.Env = append(os.Environ(), "RENICE_HELPER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _, _ = io.Copy(io.Discard, out); _ = cmd.Wait() })
	// Once the helper runs its test, its Go runtime has started threads.
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("helper: %q %v", l, err)
	}
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", cmd.Process.Pid)); err != nil || len(tasks) < 2 {
		t.Fatalf("the helper has %d threads (%v); the test needs several", len(tasks), err)
	}
	// A nice value above this process's own: an unprivileged process may
	// only raise one.
	own := threadNice(t, os.Getpid(), strconv.Itoa(os.Getpid()))
	target := min(own+7, 19)
	if err := renice(cmd.Process.Pid, target); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{cmd.Process.Pid, os.Getpid()} {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			got := threadNice(t, pid, task.Name())
			want := target
			if pid == os.Getpid() {
				want = own // untouched
			}
			if got != want {
				t.Errorf("thread %s of %d: nice %d, want %d", task.Name(), pid, got, want)
			}
		}
	}
	if err := renice(1<<30, 7); err == nil {
		t.Error("renice of a process that does not exist: no error")
	}
}

// threadNice reads field 19 (nice) of /proc/PID/task/TID/stat.
func threadNice(t *testing.T, pid int, tid string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: split after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.Atoi(f[16]) // field 19 counted from 1, after pid and comm
	if err != nil {
		t.Fatal(err)
	}
	return n
}
