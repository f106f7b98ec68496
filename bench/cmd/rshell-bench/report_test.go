//go:build linux

package main

import (
	"strings"
	"testing"
)

// A missed goal is marked as beyond the floor only when the floor of the
// same run missed it too.
func TestGoalsBeyondTheFloor(t *testing.T) {
	mk := func(name, unit string, rs, rp float64) *row {
		x := &row{name: name, unit: unit, rs: stat{ok: true, median: rs}}
		if rp != 0 {
			x.rp = stat{ok: true, median: rp}
		}
		return x
	}
	r := &run{rows: []*row{
		mk("connect_first_eval", "time", 1.8e6, 2e6),         // 0.90×, missed
		mk("connect_first_eval_resumed", "time", 1.1e6, 2e6), // 0.55×, missed
		mk("floor_tls_connect", "time", 1.5e6, 0),            // 0.75×: beyond 0.6×
		mk("floor_tls_connect_resumed", "time", 0.6e6, 0),    // 0.30×: within 0.4×
		mk("throughput_c64", "rate", 10000, 5000),            // 2×, missed
		mk("floor_tcp_quiet_c64", "rate", 20000, 0),          // 4×: beyond 5×
		mk("replicate_N100000", "time", 40e6, 100e6),         // 0.40×, missed, no floor
	}}
	goals(r, 10000)
	want := map[string]float64{"connect_first_eval": 0.75, "connect_first_eval_resumed": 0, "throughput_c64": 4, "replicate_N100000": 0}
	for name, f := range want {
		x := r.get(name)
		if x.met == nil || *x.met {
			t.Fatalf("%s: met %v, want missed", name, x.met)
		}
		if d := x.floorRatio - f; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: floor ratio %.2f, want %.2f", name, x.floorRatio, f)
		}
	}
	if g := r.get("floor_tcp_quiet_c64").goal; !strings.Contains(g, "throughput_c64") {
		t.Errorf("throughput floor's goal column %q does not name its row", g)
	}

	// Faster floors: nothing is beyond them.
	r.get("floor_tls_connect").rs.median = 1.0e6
	r.get("floor_tcp_quiet_c64").rs.median = 30000
	for _, x := range r.rows {
		x.floorRatio = 0
	}
	goals(r, 10000)
	for name := range want {
		if f := r.get(name).floorRatio; f != 0 {
			t.Errorf("%s: marked beyond a floor that met the goal (%.2f×)", name, f)
		}
	}
}
