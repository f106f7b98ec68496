package repl_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
	"go.uber.org/goleak"
)

// durableServer is an in-process server with a state dir that a test can
// stop and start again on the same address and certificate.
type durableServer struct {
	t    *testing.T
	addr string
	cfg  server.Config
	opts transport.Options
	srv  *server.Server
	done chan struct{}
}

func newDurableServer(t *testing.T) *durableServer {
	t.Helper()
	certPEM, keyPEM, err := transport.SelfSignedPEM()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	tok := []byte(strings.Repeat("t0k3n", 8))
	d := &durableServer{t: t,
		cfg: server.Config{Token: tok, TLS: transport.ServerTLSConfig(cert, nil), StateDir: t.TempDir(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		opts: transport.Options{Token: tok, Agent: "repl-test",
			Trust: transport.TrustOptions{Fingerprint: transport.Fingerprint(cert.Certificate[0])}},
	}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *durableServer) start() {
	d.t.Helper()
	addr := d.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		d.t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	srv, err := server.New(d.cfg)
	if err != nil {
		ln.Close()
		d.t.Fatal(err)
	}
	d.srv, d.done = srv, make(chan struct{})
	go func() { defer close(d.done); _ = srv.Serve(ln) }()
}

func (d *durableServer) stop() {
	if d.srv == nil {
		return
	}
	d.srv.Close()
	<-d.done
	d.srv = nil
}

// waitFor polls out (bounded) until it contains s: the shell's output is
// the only signal a test has of an asynchronous notice.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 15s in:\n%s", s, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noLeaks checks, after everything else the test cleans up, that the shell
// left no goroutine behind (watchers, reconnectors).
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func TestReconnectResumesSession(t *testing.T) {
	noLeaks(t)
	ds := newDurableServer(t)
	out := &syncBuffer{}
	lines := &blockingReader{next: make(chan string)}
	done := make(chan int)
	go func() {
		done <- repl.Run(context.Background(), repl.Config{
			Hosts: []repl.HostSpec{{Name: "web1", Addr: ds.addr, Options: ds.opts}},
			Lines: lines, Out: out, Err: out, Interactive: true,
		})
	}()
	lines.next <- "x = 42"
	lines.next <- "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n"
	lines.next <- "" // returns once the loop has run the def
	ds.stop()
	waitFor(t, out, "! lost web1 (the connection closed); reconnecting…")
	lines.next <- ":hosts"
	lines.next <- ""
	if got := out.String(); !strings.Contains(got, "reconnecting (attempt ") {
		t.Errorf(":hosts while reconnecting:\n%s", got)
	}
	lines.next <- "x" // waits for web1 to come back
	ds.start()
	lines.next <- "fib(10)"
	close(lines.next)
	if st := <-done; st != 0 {
		t.Errorf("status %d", st)
	}
	got := out.String()
	back := strings.Index(got, "! web1 is back — session resumed, namespace intact")
	if back < 0 || !strings.Contains(got[back:], "\n42\n") || !strings.Contains(got[back:], "\n55\n") {
		t.Errorf("after the restart:\n%s", got)
	}
}

func TestReconnectStopsOnClose(t *testing.T) {
	noLeaks(t)
	ds := newDurableServer(t)
	out := &syncBuffer{}
	lines := &blockingReader{next: make(chan string)}
	done := make(chan int)
	go func() {
		done <- repl.Run(context.Background(), repl.Config{
			Hosts: []repl.HostSpec{{Name: "web1", Addr: ds.addr, Options: ds.opts}},
			Lines: lines, Out: out, Err: out, Interactive: true,
		})
	}()
	lines.next <- "x = 1"
	lines.next <- ""
	ds.stop()
	waitFor(t, out, "reconnecting…")
	lines.next <- ":close web1" // stops the reconnector
	lines.next <- ""
	close(lines.next)
	if st := <-done; st != 0 {
		t.Errorf("status %d", st)
	}
}

func TestReconnectNewSessionWhenGone(t *testing.T) {
	noLeaks(t)
	ds := newDurableServer(t)
	ds.cfg.StateDir = "" // memory only: a restart loses the session
	ds.stop()
	ds.start()
	out := &syncBuffer{}
	lines := &blockingReader{next: make(chan string)}
	done := make(chan int)
	go func() {
		done <- repl.Run(context.Background(), repl.Config{
			Hosts: []repl.HostSpec{{Name: "web1", Addr: ds.addr, Options: ds.opts}},
			Lines: lines, Out: out, Err: out, Interactive: true,
		})
	}()
	lines.next <- "x = 1"
	lines.next <- ""
	ds.stop()
	waitFor(t, out, "reconnecting…")
	ds.start()
	waitFor(t, out, "! web1 is back, but its session was gone")
	lines.next <- "y = 2"
	close(lines.next)
	if st := <-done; st != 0 {
		t.Errorf("status %d", st)
	}
	if got := out.String(); !strings.Contains(got, "the namespace was lost") {
		t.Errorf("output:\n%s", got)
	}
}

func TestPendingReport(t *testing.T) {
	r := &repl.Renderer{Width: 80}
	val := transport.EncodeValue(transport.Int(42))
	for _, tc := range []struct {
		name    string
		shared  bool
		pending uint64
		last    *transport.LastChunk
		want    string
	}{
		{"none", false, 3, nil, "did not complete (the namespace is as after the last completed chunk)"},
		{"older", false, 3, &transport.LastChunk{Seq: 2, State: "done"}, "did not complete"},
		{"done", false, 3, &transport.LastChunk{Seq: 3, State: "done", Value: val}, "! the chunk that was running when web1 was lost completed:\n42\n"},
		{"failed", false, 3, &transport.LastChunk{Seq: 3, State: "failed", Err: &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: "boom"}}, "failed:\n"},
		{"interrupted", false, 3, &transport.LastChunk{Seq: 3, State: "interrupted"}, "did not complete"},
		{"cancelled", false, 3, &transport.LastChunk{Seq: 3, State: "cancelled"}, "did not complete"},
		{"running", false, 3, &transport.LastChunk{Seq: 3, State: "running"}, "is still running there"},
		{"shared", true, 3, &transport.LastChunk{Seq: 5, State: "done"}, "cannot tell how it ended"},
		{"shared, another client's lower seq", true, 3, &transport.LastChunk{Seq: 1, State: "done"}, "cannot tell how it ended"},
		{"shared, ours", true, 3, &transport.LastChunk{Seq: 3, State: "done", Value: val}, "completed:\n42\n"},
	} {
		got := repl.PendingReportForTest(r, "web1", tc.shared, tc.pending, tc.last)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q in it", tc.name, got, tc.want)
		}
	}
}
