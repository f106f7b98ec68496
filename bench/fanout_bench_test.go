package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/transport"
)

// BenchmarkFanout runs `1+1` on 1, 10, 100 and 200 in-process servers
// (TLS, token) at once through the shell's fan-out (repl.Group: the code
// behind `:use @group` and `rshell exec`), and reports the median and 99th
// percentile time for a chunk to come back from every host. The servers
// share the benchmark's CPUs with the client.
//
// Goal (issue 7): p50 on 100 hosts ≤ 3× p50 on one host.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 200} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			g := openFanoutGroup(b, n)
			ctx := context.Background()
			for range 3 { // warm up: every connection has run a chunk
				g.Exec(ctx, "1+1")
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				res := g.Exec(ctx, "1+1")
				lat = append(lat, time.Since(t0))
				for _, r := range res {
					if r.Status != "ok" || r.Value.Int != 2 {
						b.Fatalf("%s: %s %v", r.Host, r.Status, r.Err)
					}
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
			b.ReportMetric(0, "ns/op") // the percentiles say it better
		})
	}
}

// openFanoutGroup starts n servers sharing one certificate and opens a
// fan-out group on all of them.
func openFanoutGroup(b *testing.B, n int) *repl.Group {
	b.Helper()
	cert := testserver.Cert(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[defaults]\nfingerprint = %q\n", transport.Fingerprint(cert.Certificate[0]))
	for i := range n {
		ts := testserver.Start(b, nil)
		fmt.Fprintf(&cfg, "[[hosts]]\nname = \"h%d\"\naddress = %q\n", i+1, ts.Addr)
	}
	fmt.Fprintf(&cfg, "[groups]\nall = [\"h[1-%d]\"]\n", n)
	inv, err := inventory.Parse("bench.toml", []byte(cfg.String()))
	if err != nil {
		b.Fatal(err)
	}
	g, err := repl.OpenGroup(context.Background(), repl.Config{
		Target: "@all", Inventory: inv, Fanout: 64,
		Options: transport.Options{Token: testserver.Token, Agent: "fanout-bench"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	return g
}
