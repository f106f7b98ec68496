package main

import (
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// While every P is idle, the Go runtime's monitor thread (sysmon) sleeps
// until a timer is due or a goroutine enters an ordinary system call. Each
// connect makes such calls (accept, setsockopt, close), and a monitor woken
// by one polls every 20 µs while the server is busy. On a server with one
// CPU each poll preempts the server's only running thread: ~8 thread
// switches and ~0.2 ms of CPU per full TLS connect, a quarter of the
// connect's CPU (bench/RESULTS.md, item 61). GODEBUG's schedtrace is the
// runtime's only switch that keeps the monitor out of that sleep (it then
// backs off to a wake-up every 10 ms), and the runtime reads it only when
// the process starts, so `rshell serve` starts itself again with it set,
// to the longest period: schedtrace also prints a line beginning "SCHED"
// each time that many milliseconds pass, counted from the host's boot, so
// on a host up for more than 24.8 days one such line goes to stderr at
// start and then one every 24.8 days.
//
// Only with one CPU (GOMAXPROCS 1: the affinity mask, a cgroup limit or
// the variable). With two, the monitor runs beside the server rather than
// in its place and the connect gained less; and a server that re-executed
// itself with the setting there had a worse worst case for a cancelled
// chunk (cancel_latency_2cpu over 2 ms in 19 of 96 runs), though neither
// the setting alone nor the re-execution alone did (item 61).
const monitorSetting = "schedtrace=2147483647"

// reexecMarker carries through the re-execution the process's name (the
// kernel would otherwise call it "exe", after /proc/self/exe, in ps, top
// and pgrep) and the GODEBUG it was started with: the name, "/", then "="
// and GODEBUG's value, or nothing when GODEBUG was unset.
const reexecMarker = "RSHELL_SERVE_GODEBUG"

// keepMonitorAwake re-executes `rshell serve` with monitorSetting added to
// GODEBUG when it runs on one CPU, unless the environment already sets
// schedtrace or the server is asked to --sleep-when-idle (an idle server's
// monitor then wakes ~100 times a second, ~3 ms of CPU a second on the
// benchmark VM). It returns only when it does not re-execute: another
// command, or the exec failed, and then the server runs with the
// monitor's deep sleep. In the re-executed server it puts GODEBUG back as
// it was, so that processes the server starts (os.run) see the
// environment the user gave it.
func keepMonitorAwake(args []string) {
	if marker, ok := os.LookupEnv(reexecMarker); ok {
		_ = os.Unsetenv(reexecMarker)
		name, orig, _ := strings.Cut(marker, "/")
		if name != "" {
			_ = os.WriteFile("/proc/self/comm", []byte(name), 0)
		}
		if v, set := strings.CutPrefix(orig, "="); set {
			_ = os.Setenv("GODEBUG", v)
		} else {
			_ = os.Unsetenv("GODEBUG")
		}
		return
	}
	if len(args) < 2 || args[1] != "serve" || sleepWhenIdle(args[2:]) || runtime.GOMAXPROCS(0) != 1 {
		return
	}
	godebug, set := os.LookupEnv("GODEBUG")
	if godebugSets(godebug, "schedtrace") {
		return
	}
	name, _ := os.ReadFile("/proc/self/comm")
	marker, value := strings.TrimSpace(string(name))+"/", monitorSetting
	if set {
		marker += "=" + godebug
		if godebug != "" {
			value = godebug + "," + monitorSetting
		}
	}
	env := []string{"GODEBUG=" + value, reexecMarker + "=" + marker}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "GODEBUG" && k != reexecMarker {
			env = append(env, kv)
		}
	}
	// /proc/self/exe is this binary even when its file has been replaced
	// or removed since it started.
	_ = syscall.Exec("/proc/self/exe", args, env)
}

// godebugSets reports whether the GODEBUG value godebug sets key.
func godebugSets(godebug, key string) bool {
	for field := range strings.SplitSeq(godebug, ",") {
		if k, _, ok := strings.Cut(field, "="); ok && k == key {
			return true
		}
	}
	return false
}

// sleepWhenIdle reports whether the serve flags in args turn
// --sleep-when-idle on, read by serve's own flag set. Unknown flags are
// ignored, and args the parser refuses count as off: the server, started
// again, then says what is wrong with them.
func sleepWhenIdle(args []string) bool {
	fs := newServeCmd().Flags()
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.SetOutput(io.Discard)
	if fs.Parse(args) != nil {
		return false
	}
	on, err := fs.GetBool(sleepWhenIdleFlag)
	return err == nil && on
}
