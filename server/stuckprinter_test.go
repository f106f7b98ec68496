package server_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// A chunk that prints to a client that stopped reading waits in its write
// without its turn on the CPU: other sessions' chunks still run, even with
// every CPU slot taken by such printers.
func TestStuckPrinterDoesNotHoldTheCPU(t *testing.T) {
	ts := start(t, true, func(c *server.Config) { c.Session.MaxOutput = 64 << 20 })
	stuck := make(chan struct{})
	defer close(stuck)
	for range runtime.GOMAXPROCS(0) {
		c := ts.dial(t)
		printing := make(chan struct{})
		var once sync.Once
		go func() {
			// Never returns normally: the client's cleanup closes it.
			_, _ = c.Exec(context.Background(), transport.EvalRequest{Src: "for i in range(1000):\n    print('x' * 100000)"}, func(string) {
				once.Do(func() { close(printing) })
				<-stuck // the client stops reading: the server's writes block
			})
		}()
		<-printing
	}
	for range 5 {
		healthy(t, ts)
	}
}
