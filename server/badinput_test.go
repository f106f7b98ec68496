package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
	"go.starlark.net/starlark"
)

// rawStream authenticates on a plaintext server and opens one stream
// on which a test can write anything.
// rawMux is an authenticated multiplexed session to ts, without a client on top.
func rawMux(t *testing.T, ts *testServer) *mux.Session {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.ClientHandshake(nc, ts.opts.Token, "test", time.Second); err != nil {
		t.Fatal(err)
	}
	mux := transport.ClientMux(nc, transport.MuxOptions{})
	t.Cleanup(func() { mux.Close() })
	return mux
}

func rawStream(t *testing.T, ts *testServer) (*mux.Stream, *bufio.Reader) {
	t.Helper()
	st, err := rawMux(t, ts).Open()
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	return st, bufio.NewReader(st)
}

func expectError(t *testing.T, r io.Reader, kind, contains string) {
	t.Helper()
	m, err := transport.ReadMsg(r, 0)
	if err != nil {
		t.Fatalf("want an error frame, got %v", err)
	}
	if m.T != transport.TError || m.Err.Kind != kind || !strings.Contains(m.Err.Msg, contains) {
		t.Fatalf("want %s error containing %q, got %+v %+v", kind, contains, m, m.Err)
	}
}

// healthy checks that a well-behaved client is still served.
func healthy(t *testing.T, ts *testServer) {
	t.Helper()
	if v := eval(t, ts.dial(t), "20 + 22"); !v.Equal(transport.Int(42)) {
		t.Fatalf("healthy client got %+v", v)
	}
}

func TestGarbageInsteadOfHello(t *testing.T) {
	both(t, func(t *testing.T, plaintext bool) {
		ts := start(t, plaintext, nil)
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, _ = nc.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 100))
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, nc) // the server closes the connection
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("connection not closed cleanly: %v", err)
		}
		healthy(t, ts)
	})
}

func TestWrongVersionNamesBoth(t *testing.T) {
	ts := start(t, true, nil)
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := transport.ReadMsg(nc, 0); err != nil {
		t.Fatal(err)
	}
	if err := transport.WriteMsg(nc, &transport.Msg{T: transport.THello, Version: 7}, 0); err != nil {
		t.Fatal(err)
	}
	expectError(t, nc, transport.KindVersion, fmt.Sprintf("client speaks protocol v7, this server speaks v%d", transport.ProtocolVersion))
	healthy(t, ts)
}

func TestWrongTokenIsRefusedAndLogged(t *testing.T) {
	ts := start(t, false, nil)
	o := ts.opts
	o.Token = []byte("not-the-token-not-the-token-0000")
	_, err := transport.Dial(testCtx(t), ts.addr, o)
	if !errors.Is(err, transport.ErrAuth) {
		t.Fatalf("want ErrAuth, got %v", err)
	}
	if strings.Contains(err.Error(), string(ts.opts.Token)) || strings.Contains(ts.logs.String(), string(ts.opts.Token)) {
		t.Fatal("token leaked")
	}
	if !strings.Contains(ts.logs.String(), "wrong token") || !strings.Contains(ts.logs.String(), "peer=127.0.0.1:") {
		t.Fatalf("log: %s", ts.logs.String())
	}
	o.Token = nil
	if _, err := transport.Dial(testCtx(t), ts.addr, o); !errors.Is(err, transport.ErrAuth) {
		t.Fatalf("no token: %v", err)
	}
	healthy(t, ts)
}

// A peer whose hellos keep failing for another reason than the token (a
// wrong version here) still gets the right error each time, but past the
// limit only after a wait, and it is not locked out.
func TestRepeatedBadHellosWaitForTheirAnswer(t *testing.T) {
	const delay = 300 * time.Millisecond
	ts := start(t, true, func(c *server.Config) { c.AuthFailures = 3; c.AuthRefuseDelay = delay })
	want := fmt.Sprintf("client speaks protocol v7, this server speaks v%d", transport.ProtocolVersion)
	for i := 1; i <= 4; i++ {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := transport.ReadMsg(nc, 0); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := transport.WriteMsg(nc, &transport.Msg{T: transport.THello, Version: 7}, 0); err != nil {
			t.Fatal(err)
		}
		expectError(t, nc, transport.KindVersion, want)
		if took := time.Since(t0); i == 4 && took < delay {
			t.Fatalf("the 4th wrong version was answered after %v, before the %v wait", took, delay)
		}
		nc.Close()
	}
	healthy(t, ts) // the right version from the same address is served at once
}

func TestFailedAuthIsRateLimited(t *testing.T) {
	const delay = 300 * time.Millisecond
	ts := start(t, true, func(c *server.Config) { c.AuthFailures = 3; c.AuthWindow = time.Minute; c.AuthRefuseDelay = delay })
	o := ts.opts
	o.Token = []byte("not-the-token-not-the-token-0000")
	for i := 0; i < 3; i++ {
		if _, err := transport.Dial(testCtx(t), ts.addr, o); !errors.Is(err, transport.ErrAuth) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Now even the right token is refused from this address, with a reason,
	// and only after a wait: a blocked peer cannot make the server do a TLS
	// handshake per attempt at full speed.
	t0 := time.Now()
	_, err := transport.Dial(testCtx(t), ts.addr, ts.opts)
	var re *transport.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Info.Msg, "too many failed attempts") {
		t.Fatalf("want rate limit, got %v", err)
	}
	if took := time.Since(t0); took < delay {
		t.Fatalf("the refusal came after %v, before the %v wait", took, delay)
	}
}

func TestSilentPeerDroppedAtHandshakeDeadline(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("silent peer was not dropped")
	}
	healthy(t, ts)
}

func TestOversizeFrame(t *testing.T) {
	ts := start(t, true, func(c *server.Config) { c.MaxFrame = 1 << 20 })
	st, r := rawStream(t, ts)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	_, _ = st.Write(hdr[:])
	expectError(t, r, transport.KindProtocol, "frame too large")
	healthy(t, ts)
}

func TestDeeplyNestedFrame(t *testing.T) {
	ts := start(t, true, nil)
	st, r := rawStream(t, ts)
	body := append(bytes.Repeat([]byte{0x81}, 10000), 0xf6)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	_, _ = st.Write(append(hdr[:], body...))
	expectError(t, r, transport.KindProtocol, "malformed frame")
	healthy(t, ts)
}

func TestUnknownRequest(t *testing.T) {
	ts := start(t, true, nil)
	st, r := rawStream(t, ts)
	_ = transport.WriteMsg(st, &transport.Msg{T: "launch-missiles"}, 0)
	expectError(t, r, transport.KindProtocol, `unknown request "launch-missiles"`)
	healthy(t, ts)
}

func TestDeepValueFromClientIsRefused(t *testing.T) {
	ts := start(t, true, nil)
	c := ts.dial(t)
	v := transport.None()
	for i := 0; i < 5000; i++ {
		v = transport.List(v)
	}
	err := c.Put(testCtx(t), "deep", v)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindProtocol {
		t.Fatalf("want a protocol error, got %v", err)
	}
	healthy(t, ts)
}

func TestCyclicAndHugeResults(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.Session.MaxResult = 1 << 20 })
	c := ts.dial(t)
	v := eval(t, c, "a = [1]\na.append(a)\na")
	if v.Kind != transport.KindList || v.Items[1].Kind != transport.KindRef {
		t.Fatalf("cyclic: %+v", v)
	}
	_, err := c.Eval(testCtx(t), `"x" * (2 * 1024 * 1024)`, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit || !strings.Contains(re.Info.Msg, "cap") {
		t.Fatalf("huge: %v", err)
	}
	if v := eval(t, c, "len(a)"); !v.Equal(transport.Int(2)) {
		t.Fatalf("after huge: %+v", v)
	}
}

func TestPanickingBuiltinIsRecovered(t *testing.T) {
	ts := start(t, false, func(c *server.Config) {
		c.Session.Extra = starlark.StringDict{"explode": starlark.NewBuiltin("explode", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			panic("kaboom")
		})}
	})
	c := ts.dial(t)
	eval(t, c, "x = 1")
	_, err := c.Eval(testCtx(t), "explode()", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Info.Msg, "kaboom") {
		t.Fatalf("got %v", err)
	}
	if v := eval(t, c, "x + 41"); !v.Equal(transport.Int(42)) {
		t.Fatalf("session harmed: %+v", v)
	}
}

func TestMaxStepsAndMaxEvalTime(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.Session.MaxSteps = 100000; c.Session.MaxEvalTime = 5 * time.Second })
	c := ts.dial(t)
	_, err := c.Eval(testCtx(t), "while True: pass", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit || !strings.Contains(re.Info.Msg, "--max-steps") {
		t.Fatalf("steps: %v", err)
	}
	ts2 := start(t, false, func(c *server.Config) { c.Session.MaxEvalTime = 100 * time.Millisecond })
	_, err = ts2.dial(t).Eval(testCtx(t), "time.sleep(10)", nil)
	if !errors.As(err, &re) || re.Kind() != transport.KindDeadline || !strings.Contains(re.Info.Msg, "--max-eval-time") {
		t.Fatalf("eval time: %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	ts := start(t, false, nil)
	c := ts.dial(t)
	ctx := testCtx(t)
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := c.Eval(ctx, "print('go')\ntime.sleep(0.2)\n'finished'", func(string) { close(started) })
		res <- err
	}()
	<-started
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-res; err != nil {
		t.Fatalf("running chunk did not finish: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestShutdownDeadlineCancelsChunks(t *testing.T) {
	ts := start(t, false, nil)
	c := ts.dial(t)
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := c.Eval(testCtx(t), "print('go')\nwhile True: pass", func(string) { close(started) })
		res <- err
	}()
	<-started
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	err := <-res
	var re *transport.RemoteError
	if !errors.As(err, &re) && !errors.Is(err, transport.ErrConnLost) {
		t.Fatalf("got %v", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	ts := start(t, true, func(c *server.Config) { c.MaxConns = 2 })
	ts.dial(t)
	ts.dial(t)
	_, err := transport.Dial(testCtx(t), ts.addr, ts.opts)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit {
		t.Fatalf("third connection: %v", err)
	}
}

func TestDialErrorsSayWhatToDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = transport.Dial(testCtx(t), addr, transport.Options{})
	if !errors.Is(err, transport.ErrConnLost) || !strings.Contains(err.Error(), "connection refused — is 'rshell serve' running there?") {
		t.Fatalf("got %v", err)
	}
}

func TestMemoryWatchdogStopsChunks(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.MaxMemory = 256 << 20 })
	c := ts.dial(t)
	eval(t, c, "x = 42")
	// Grows without bound until the watchdog stops it.
	_, err := c.Eval(testCtx(t), "a = []\nwhile True:\n    a.append('x' * 100000)", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit || !strings.Contains(re.Info.Msg, "--max-memory 256 MiB") {
		t.Fatalf("got %v", err)
	}
	eval(t, c, "a = None")
	if v := eval(t, c, "x"); !v.Equal(transport.Int(42)) {
		t.Fatalf("x = %+v", v)
	}
}

func TestSandboxRefusesFilesAndOS(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.Session.Sandbox = true })
	c := ts.dial(t)
	ctx := testCtx(t)
	_, err := c.Eval(ctx, "os.getcwd()", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Info.Msg, "os") {
		t.Fatalf("os in sandbox: %v", err)
	}
	err = c.Upload(ctx, strings.NewReader("x"), 1, "/tmp/should-not-exist-rshell", nil)
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit || !strings.Contains(re.Info.Msg, "--sandbox") {
		t.Fatalf("upload in sandbox: %v", err)
	}
	if v := eval(t, c, "math.floor(2.5) + len('ab')"); !v.Equal(transport.Int(4)) {
		t.Fatalf("pure computation: %+v", v)
	}
}

// With one handshake slot, silent peers hold none (the slot is taken when
// a ClientHello arrives) and a burst of real clients queues for it.
func TestHandshakeGate(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.MaxHandshakes = 1 })
	for i := 0; i < 5; i++ {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			c, err := transport.Dial(testCtx(t), ts.addr, ts.opts)
			if err == nil {
				_, err = c.Eval(testCtx(t), "1", nil)
				c.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestMalformedFramesCloseTheConnection: a connection that keeps sending
// malformed frames is closed after 16 of them; others are served.
func TestMalformedFramesCloseTheConnection(t *testing.T) {
	const pause = 50 * time.Millisecond
	ts := start(t, true, func(c *server.Config) { c.BadFramePause = pause })
	mux := rawMux(t, ts)
	bad := []byte{0, 0, 0, 2, 0xff, 0xff}
	var t5 time.Time
	for i := 1; i <= 17; i++ {
		if i == 5 {
			t5 = time.Now()
		}
		st, err := mux.Open()
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = st.Write(bad)
		want := "malformed"
		if i == 17 {
			want = "17 malformed frames on this connection, which the server now closes"
		}
		expectError(t, bufio.NewReader(st), transport.KindProtocol, want)
	}
	// Past the fourth, each bad frame paused the connection's reading: the
	// 6th to the 17th waited 12 pauses between them.
	if took := time.Since(t5); took < 12*pause {
		t.Errorf("frames 5 to 17 took %v, want at least 12 pauses of %v", took, pause)
	}
	select {
	case <-mux.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
	healthy(t, ts)
	// Each bad frame got its error, but the log holds 10 lines about this
	// peer at most: a flood must not cost a log line each.
	if n := strings.Count(ts.logs.String(), "bad frame from client"); n != 10 {
		t.Errorf("%d log lines for 16 bad frames from one peer, want 10 (the rest held back)", n)
	}
}
