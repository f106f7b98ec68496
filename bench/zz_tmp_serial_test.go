package bench

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/transport"
)

func BenchmarkTmpSerial100(b *testing.B) {
	var cs []*transport.Client
	for range 100 {
		s := startServer(b)
		cs = append(cs, s.dial(b))
	}
	ctx := context.Background()
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if mode == "serial" {
					for _, c := range cs {
						c.Eval(ctx, "1+1", nil)
					}
				} else {
					var wg sync.WaitGroup
					for _, c := range cs {
						wg.Add(1)
						go func() { defer wg.Done(); c.Eval(ctx, "1+1", nil) }()
					}
					wg.Wait()
				}
				lat = append(lat, time.Since(t0))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
}
