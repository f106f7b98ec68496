//go:build !linux

package main

// keepMonitorAwake does nothing here: the runtime monitor's wake-ups were
// measured only on Linux (monitor_linux.go).
func keepMonitorAwake([]string) {}
