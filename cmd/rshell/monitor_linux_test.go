package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestGodebugSets(t *testing.T) {
	for _, tc := range []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{"schedtrace=0", true},
		{"madvdontneed=1,schedtrace=10", true},
		{"scheddetail=1", false},
		{"schedtrace", false},
		{"xschedtrace=1", false},
	} {
		if got := godebugSets(tc.godebug, "schedtrace"); got != tc.want {
			t.Errorf("godebugSets(%q) = %v, want %v", tc.godebug, got, tc.want)
		}
	}
}

func TestSleepWhenIdle(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--listen", "127.0.0.1:0"}, false},
		{[]string{"--listen", "127.0.0.1:0", "--sleep-when-idle"}, true},
		{[]string{"--sleep-when-idle=true"}, true},
		{[]string{"--sleep-when-idle=1"}, true},
		{[]string{"--sleep-when-idle=false"}, false},
		{[]string{"--sleep-when-idle=bogus"}, false},
		{[]string{"--sleep-when-idler"}, false},
		{[]string{"--", "--sleep-when-idle"}, false},
	} {
		if got := sleepWhenIdle(tc.args); got != tc.want {
			t.Errorf("sleepWhenIdle(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestServeKeepsMonitorAwake starts the real server on one CPU
// (GOMAXPROCS=1) with GODEBUG unset, set and already setting schedtrace,
// with --sleep-when-idle, and on two CPUs, and checks the environment its
// runtime started with (/proc/PID/environ) and the one its chunks and
// their processes see.
func TestServeKeepsMonitorAwake(t *testing.T) {
	const probe = `print(repr(os.getenv("GODEBUG")), repr(os.getenv("RSHELL_SERVE_GODEBUG")), repr(os.run(["sh", "-c", "echo \"[$GODEBUG]\""]).stdout))`
	for _, tc := range []struct {
		name, godebug string // godebug "-" = unset
		procs         string // GOMAXPROCS
		flags         []string
		wantStart     string // GODEBUG the runtime started with, "" = none
		wantChunk     string
	}{
		{"unset", "-", "1", nil, "schedtrace=2147483647", `None None "[]\n"`},
		{"set", "madvdontneed=1", "1", nil, "madvdontneed=1,schedtrace=2147483647", `"madvdontneed=1" None "[madvdontneed=1]\n"`},
		{"empty", "", "1", nil, "schedtrace=2147483647", `"" None "[]\n"`},
		{"the user's own", "schedtrace=0", "1", nil, "schedtrace=0", `"schedtrace=0" None "[schedtrace=0]\n"`},
		{"sleep when idle", "-", "1", []string{"--sleep-when-idle"}, "", `None None "[]\n"`},
		{"sleep when idle, set", "madvdontneed=1", "1", []string{"--sleep-when-idle=true"}, "madvdontneed=1", `"madvdontneed=1" None "[madvdontneed=1]\n"`},
		{"two CPUs", "-", "2", nil, "", `None None "[]\n"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for _, kv := range testEnv(t) {
				if !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
					env = append(env, kv)
				}
			}
			env = append(env, "GOMAXPROCS="+tc.procs)
			if tc.godebug != "-" {
				env = append(env, "GODEBUG="+tc.godebug)
			}
			p := startServerProc(t, env, tc.flags...)
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			var start []string
			for kv := range bytes.SplitSeq(b, []byte{0}) {
				if k, _, _ := strings.Cut(string(kv), "="); k == "GODEBUG" || k == reexecMarker {
					start = append(start, string(kv))
				}
			}
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.cmd.Process.Pid)); err != nil || string(comm) != "rshell\n" {
				t.Errorf("the server's process is named %q (%v), want rshell", comm, err)
			}
			switch {
			case tc.wantStart == "" && len(start) != 0:
				t.Errorf("the server was started again with %q", start)
			case tc.wantStart != "" && (len(start) == 0 || start[0] != "GODEBUG="+tc.wantStart):
				t.Errorf("the server's runtime started with %q, want GODEBUG=%s first", start, tc.wantStart)
			}
			out, errs, code := runBinary(t, env, "", "exec", p.addr, "--trust-new-host", "-e", probe)
			// The output is the host's name, then what it printed, indented.
			_, printed, _ := strings.Cut(out, ":\n")
			if code != 0 || strings.TrimSpace(printed) != tc.wantChunk {
				t.Errorf("a chunk saw %q (stderr %q, status %d), want %q", out, errs, code, tc.wantChunk)
			}
		})
	}
}
