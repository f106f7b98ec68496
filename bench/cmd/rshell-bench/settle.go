//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes reads the all-CPU line of /proc/stat: idle (idle + iowait) and
// total jiffies.
func cpuTimes() (idle, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total, true
}

// settle waits until the machine's CPUs were at least 95% idle over two
// windows of 250 ms in a row, or limit passed, and says how it went. Work
// that ran just before (a build, a storm's thousands of sockets being
// freed, another benchmark's processes exiting) otherwise lands on the
// next measurement: the kernel's RCU thread ran for 1.6 ms at a time
// after a fuzz run, and a cancel waited behind it.
func settle(limit time.Duration) string {
	start := time.Now()
	quiet := 0
	last := -1.0
	i0, t0, ok := cpuTimes()
	if !ok {
		return "not checked (no /proc/stat)"
	}
	for time.Since(start) < limit {
		time.Sleep(250 * time.Millisecond)
		i1, t1, ok := cpuTimes()
		if !ok || t1 == t0 {
			continue
		}
		last = float64(i1-i0) / float64(t1-t0)
		i0, t0 = i1, t1
		if last >= 0.95 {
			quiet++
			if quiet == 2 {
				return fmt.Sprintf("CPUs ≥ 95%% idle after %s", time.Since(start).Round(10*time.Millisecond))
			}
		} else {
			quiet = 0
		}
	}
	return fmt.Sprintf("CPUs still busy after %s (%.0f%% idle in the last 250 ms): measured anyway", limit, 100*last)
}
