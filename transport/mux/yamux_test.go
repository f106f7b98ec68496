package mux

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// The package speaks yamux's wire format: these tests put hashicorp/yamux
// on the other end, over TLS, and echo payloads of many sizes both ways.

func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	return cfg
}

// yamuxEcho serves echo on every stream y accepts, until y ends.
func yamuxEcho(t *testing.T, y *yamux.Session) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := y.AcceptStream()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(st, st)
				_ = st.Close()
			}()
		}
	}()
	t.Cleanup(func() { y.Close(); wg.Wait() })
}

func TestYamuxServer(t *testing.T) {
	cc, sc := tlsConns(t)
	y, err := yamux.Server(sc, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := Client(cc, Config{})
	t.Cleanup(func() { c.Close(); waitClosed(t, c) })
	yamuxEcho(t, y)

	var wg sync.WaitGroup
	for i, n := range echoSizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(byte(i), n)
			mustEqual(t, fmt.Sprintf("echo of %d bytes by yamux", n), roundTrip(t, c, want), want)
		}()
	}
	wg.Wait()
	if rtt, err := c.Ping(); err != nil || rtt <= 0 {
		t.Fatalf("Ping to yamux: %v, %v", rtt, err)
	}
	// yamux closing ends the session, as a closed connection.
	y.Close()
	waitClosed(t, c)
}

func TestYamuxClient(t *testing.T) {
	cc, sc := tlsConns(t)
	s := Server(sc, Config{})
	t.Cleanup(func() { s.Close(); waitClosed(t, s) })
	acceptAll(t, s, echo)
	ycfg := yamuxConfig()
	ycfg.EnableKeepAlive = true
	ycfg.KeepAliveInterval = 10 * time.Millisecond
	y, err := yamux.Client(cc, ycfg)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()

	var wg sync.WaitGroup
	errs := make(chan error, len(echoSizes))
	for i, n := range echoSizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(byte(50+i), n)
			st, err := y.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			go func() { st.Write(want); st.Close() }() // yamux Close is a half-close
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- fmt.Errorf("%d bytes: %w", n, err)
			} else if string(got) != string(want) {
				errs <- fmt.Errorf("echo of %d bytes came back as %d different bytes", n, len(got))
			}
		}()
	}
	recv(t, async(func() struct{} { wg.Wait(); return struct{}{} }), "echoes to yamux")
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// yamux's keepalive pings are answered.
	if rtt, err := y.Ping(); err != nil || rtt <= 0 {
		t.Fatalf("yamux Ping: %v, %v", rtt, err)
	}
	if y.IsClosed() || s.IsClosed() {
		t.Fatalf("a session ended: yamux %v, mux %v", y.IsClosed(), s.Err())
	}
}
