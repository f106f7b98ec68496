package bench

import (
	"context"
	"testing"

	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// BenchmarkChunkLatencyStateDir is one chunk that changes the namespace
// (x = x + 1) on a reused connection, over loopback TLS, with the session
// kept in memory only and with a state dir (the change written and synced
// before the answer). The difference is the cost of durability per chunk.
func BenchmarkChunkLatencyStateDir(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "statedir"
		}
		b.Run(name, func(b *testing.B) {
			dir := ""
			if durable {
				dir = b.TempDir()
			}
			s := startDurableServer(b, dir)
			c, err := transport.Dial(context.Background(), s.Addr, s.Opts)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if _, err := c.Eval(ctx, "x = 0", nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := c.Exec(ctx, transport.EvalRequest{Src: "x = x + 1"}, nil)
				if err != nil || r.Warn != "" {
					b.Fatal(err, r.Warn)
				}
			}
		})
	}
}

func startDurableServer(tb testing.TB, stateDir string) *testserver.Server {
	return testserver.Start(tb, func(c *server.Config) { c.StateDir = stateDir })
}
