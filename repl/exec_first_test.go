package repl_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rshell/rshell/internal/testserver"
	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/transport"
)

// rshell exec sends its chunk with the hello and the attach: behind a
// proxy that passes the server's challenge and holds the rest, the chunk
// runs although the client never hears that its hello was accepted.
func TestExecSendsItsChunkWithTheHello(t *testing.T) {
	f := startFleet(t, 1, true, "")
	hold := testserver.StartCutProxy(t, f.servers[0].addr)
	hold.HoldAfterFirstFrame()
	proxy := hold.Addr()
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = fmt.Appendf(cfg, "\n[[hosts]]\nname = \"held\"\naddress = %q\n", proxy)
	if err := os.WriteFile(f.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	watcher, err := transport.Dial(ctx, f.servers[0].addr, transport.Options{Token: fleetToken, Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		var o, e lockedBuffer
		code := repl.Exec(ectx, repl.Config{Target: "held", InventoryPath: f.config, Out: &o, Err: &e}, repl.Job{Src: "x = 1"})
		if !strings.Contains(e.String(), "cancelled while connecting") {
			t.Errorf("exec cancelled while connecting said: %q", e.String())
		}
		done <- code
	}()
	ran := false
	for i := 0; i < 500 && !ran; i++ {
		list, err := watcher.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, si := range list {
			ran = ran || !si.Mine && si.Chunks > 0
		}
	}
	cancel()
	<-done
	if !ran {
		t.Fatal("the chunk did not run before the client heard the server's welcome: not sent with the hello")
	}
}
