//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rshell/rshell/transport"
)

// The throughput floor: how many round trips a second the busiest
// throughput level's number of client processes get from a bare TCP echo
// server (the floor server, pinned like the rshell server) when each does
// the least a request/response client does: 16 bytes out, 16 bytes back,
// no TLS, no framing, no evaluation, with rshell's own socket I/O
// (transport.QuietConn: raw non-blocking reads and writes, waiting in Go's
// network poller). Measured in the same run as throughput_c64, it is the
// most that row's ratio could be on this machine for Go clients that are
// separate processes. (A blocking socket read on a locked thread, one write
// and one read per round trip, was measured too and got 2–3× fewer round
// trips: the runtime sees a goroutine that never parks, so each process's
// sysmon thread keeps waking, and with 64 processes on one CPU every wake
// is a switch between address spaces.)

// runFloorRate is one client process of the throughput floor: it connects,
// warms up, and runs round trips back to back for d (throughput's ready/go
// handshake with the harness).
func runFloorRate(addr string, d time.Duration) error {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.(*net.TCPConn).SetNoDelay(true)
	rt := floorRoundTrip(transport.QuietConn(raw))
	for range 200 {
		if err := rt(); err != nil {
			return err
		}
	}
	ops, secs, cpu, err := throughput(d, rt)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(clientResult{Ops: ops, Seconds: secs, CPU: cpu})
}

// floorRate measures the throughput floor with c client processes on CPU
// cc against a floor server on CPU sc, and adds its row.
func (h *harness) floorRate(ctx context.Context, res *run, c int, sc, cc string) error {
	fs, addrs, err := h.startFloorServer(ctx, sc)
	if err != nil {
		return err
	}
	defer fs.stop()
	echoAddr := addrs[3] // the quiet echo: the server side as rshell's server does its I/O
	t0 := time.Now()
	rate, cpu, ccpu, err := throughputRun(ctx, c, fs.pid(), func(ctx context.Context) (*proc, error) {
		return start(ctx, cc, h.self, "-role", "floor-client", "-w", "rate", "-addr", echoAddr, "-d", h.cfg.dur.String())
	})
	if err != nil {
		return err
	}
	x := res.add(fmt.Sprintf("floor_tcp_quiet_c%d", c), "rate")
	x.rs = stat{ok: true, median: rate, n: c, note: "CPU/round trip: " + strings.TrimPrefix(cpuNote(cpu, ccpu), "CPU/eval: ")}
	x.rp.note = "—"
	progress("%s: %.0f round trips/s (%s) [%s]", x.name, rate, x.rs.note, since(t0))
	return nil
}

// throughputLevel is the c of a floor_..._cN row name (0 if it has none).
func throughputLevel(name string) int {
	c, _ := strconv.Atoi(name[strings.LastIndex(name, "_c")+2:])
	return c
}
