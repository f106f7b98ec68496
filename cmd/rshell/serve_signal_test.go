//go:build unix

package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM: the server stops accepting, lets the running chunk finish, and
// exits 0; the client gets the chunk's result.
func TestServeSIGTERMLetsRunningChunkFinish(t *testing.T) {
	env := testEnv(t)
	srv := startServerProc(t, env, "--shutdown-grace", "20s")

	client := exec.Command(binary(t), "connect", srv.addr, "--trust-new-host")
	client.Env = env
	// One chunk (a block ends at a blank line).
	client.Stdin = strings.NewReader("if True:\n    print('started')\n    time.sleep(1)\n    print('finished')\n\n")
	out, errb := &lockedBuffer{}, &lockedBuffer{}
	client.Stdout, client.Stderr = out, errb
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	srv.waitLog("session attached", 10*time.Second)
	// The chunk is running once the client printed its first output; the
	// client's stdout is ours, so poll it (bounded).
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("chunk never started: %s %s", out.String(), errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.mu.Lock()
	proc, done := srv.cmd, srv.done
	srv.mu.Unlock()
	if err := syscall.Kill(proc.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	if code := proc.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("server exit status %d:\n%s", code, srv.log())
	}
	logs := srv.log()
	if !strings.Contains(logs, "shutting down") || !strings.Contains(logs, "server stopped") {
		t.Fatalf("log:\n%s", logs)
	}
	_ = client.Wait()
	if !strings.Contains(out.String(), "finished") {
		t.Fatalf("the running chunk did not finish: stdout %q stderr %q", out.String(), errb.String())
	}
}
