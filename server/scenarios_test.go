package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

func TestStateLivesOnTheHost(t *testing.T) {
	both(t, func(t *testing.T, plaintext bool) {
		c := start(t, plaintext, nil).dial(t)
		eval(t, c, "x = 21")
		eval(t, c, "x *= 2")
		if v := eval(t, c, "x"); !v.Equal(transport.Int(42)) {
			t.Fatalf("x = %+v, want 42", v)
		}
		for _, src := range []string{`scores = {"Foo": 10}`, `scores["Foo"] += 1`, `scores["Bar"] = 42`, `scores["Bar"] += 58`} {
			eval(t, c, src)
		}
		want := transport.Dict(transport.String("Foo"), transport.Int(11), transport.String("Bar"), transport.Int(100))
		if v := eval(t, c, "scores"); !v.Equal(want) {
			t.Fatalf("scores = %+v", v)
		}
		got, err := c.Get(testCtx(t), "scores")
		if err != nil || !got.Equal(want) {
			t.Fatalf("Get scores = %+v, %v", got, err)
		}
	})
}

func TestMultiStatementChunkReturnsLastExpression(t *testing.T) {
	c := start(t, false, nil).dial(t)
	if v := eval(t, c, "a = 6\nb = 7\na * b"); !v.Equal(transport.Int(42)) {
		t.Fatalf("got %+v", v)
	}
	if v := eval(t, c, "_ + 1"); !v.Equal(transport.Int(43)) {
		t.Fatalf("_ + 1 = %+v", v)
	}
	if v := eval(t, c, "y = 1"); !v.IsNone() {
		t.Fatalf("an assignment returned %+v", v)
	}
}

func TestSysAndOS(t *testing.T) {
	c := start(t, false, nil).dial(t)
	v := eval(t, c, "sys.version")
	if v.Kind != transport.KindString || !strings.HasPrefix(v.Str, "rshell ") {
		t.Fatalf("sys.version = %+v", v)
	}
	u := eval(t, c, "os.uname()")
	if u.Kind != transport.KindStruct {
		t.Fatalf("os.uname() = %+v", u)
	}
	host, _ := os.Hostname()
	for _, f := range []string{"sysname", "nodename", "release", "version", "machine"} {
		fv, ok := u.Lookup(f)
		if !ok || fv.Kind != transport.KindString {
			t.Errorf("os.uname().%s missing: %+v", f, u)
		}
		if f == "nodename" && fv.Str != host {
			t.Errorf("nodename %q, want %q", fv.Str, host)
		}
	}
}

func TestRemoteErrorHasTraceback(t *testing.T) {
	c := start(t, false, nil).dial(t)
	eval(t, c, "x = 42")
	eval(t, c, "y = 0")
	_, err := c.Eval(testCtx(t), "z = x/y", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("want a RemoteError, got %v", err)
	}
	if errors.Is(err, transport.ErrConnLost) {
		t.Fatal("a remote error must not look like a lost connection")
	}
	if re.Kind() != transport.KindRuntime || !strings.Contains(re.Info.Msg, "division by zero") {
		t.Fatalf("error = %+v", re.Info)
	}
	last := re.Info.Frames[len(re.Info.Frames)-1]
	if last.Line != 1 || strings.TrimSpace(last.Source) != "z = x/y" || !strings.HasPrefix(last.File, "<in[") {
		t.Fatalf("frame = %+v", last)
	}
	// The session is unharmed.
	if v := eval(t, c, "x"); !v.Equal(transport.Int(42)) {
		t.Fatalf("x = %+v", v)
	}
}

func TestSyntaxErrorHasPosition(t *testing.T) {
	c := start(t, false, nil).dial(t)
	_, err := c.Eval(testCtx(t), "x = (1 +", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindSyntax || re.Info.Line != 1 || re.Info.Col == 0 || re.Info.SrcLine != "x = (1 +" {
		t.Fatalf("got %v (%+v)", err, re)
	}
}

const remoteCode = `def fib(n):
    out = []
    a, b = 1, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out

def boom(n):
    return fib(n) / 2
`

func TestUploadAndRunRemoteCode(t *testing.T) {
	ts := start(t, false, nil)
	c := ts.dial(t)
	ctx := testCtx(t)
	remote := filepath.Join(t.TempDir(), "remote_code.star")
	if err := c.Upload(ctx, strings.NewReader(remoteCode), int64(len(remoteCode)), remote, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, transport.EvalRequest{Src: remoteCode, File: "remote_code.star"}, nil); err != nil {
		t.Fatal(err)
	}
	want := transport.List(transport.Int(1), transport.Int(1), transport.Int(2), transport.Int(3), transport.Int(5), transport.Int(8), transport.Int(13), transport.Int(21), transport.Int(34), transport.Int(55))
	if v := eval(t, c, "fib(10)"); !v.Equal(want) {
		t.Fatalf("fib(10) = %+v", v)
	}
	_, err := c.Eval(ctx, "boom(3)", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("boom: %v", err)
	}
	var found bool
	for _, f := range re.Info.Frames {
		if f.File == "remote_code.star" && f.Line == 10 && strings.TrimSpace(f.Source) == "return fib(n) / 2" && f.Func == "boom" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no frame through remote_code.star:10 in %+v", re.Info.Frames)
	}
	// The uploaded file arrived intact, and comes back the same.
	var buf bytes.Buffer
	if _, err := c.Download(ctx, remote, &buf, nil); err != nil || buf.String() != remoteCode {
		t.Fatalf("download: %v, %q", err, buf.String())
	}
}

func TestDeadlineStopsTheWork(t *testing.T) {
	both(t, func(t *testing.T, plaintext bool) {
		c := start(t, plaintext, nil).dial(t)
		t0 := time.Now()
		_, err := c.Exec(testCtx(t), transport.EvalRequest{Src: "time.sleep(50)", Deadline: time.Second}, nil)
		took := time.Since(t0)
		var re *transport.RemoteError
		if !errors.As(err, &re) || re.Kind() != transport.KindDeadline {
			t.Fatalf("want a deadline error, got %v", err)
		}
		if !strings.Contains(re.Info.Msg, "deadline exceeded after 1s") {
			t.Errorf("message %q", re.Info.Msg)
		}
		t.Logf("time.sleep(50) with a 1s deadline returned after %v", took)
		if v := eval(t, c, "1 + 1"); !v.Equal(transport.Int(2)) {
			t.Fatalf("1+1 = %+v", v)
		}
	})
}

func TestContextDeadlineIsReportedAsDeadline(t *testing.T) {
	c := start(t, false, nil).dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Eval(ctx, "while True: pass", nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindDeadline {
		t.Fatalf("want deadline, got %v", err)
	}
	eval(t, c, "1")
}

func TestCancelStopsInfiniteLoop(t *testing.T) {
	c := start(t, false, nil).dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// print() output arrives while the chunk runs: cancel when it shows up.
	// If output were held back until the end, this chunk would never end.
	var got string
	_, err := c.Eval(ctx, "print('started')\nwhile True: pass", func(s string) {
		got += s
		cancel()
	})
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindCancelled {
		t.Fatalf("want cancelled, got %v", err)
	}
	if got != "started\n" {
		t.Fatalf("output %q", got)
	}
	if v := eval(t, c, "2 * 21"); !v.Equal(transport.Int(42)) {
		t.Fatalf("after cancel: %+v", v)
	}
}

func TestPing(t *testing.T) {
	both(t, func(t *testing.T, plaintext bool) {
		c := start(t, plaintext, nil).dial(t)
		rtt, err := c.Ping(testCtx(t))
		if err != nil || rtt <= 0 {
			t.Fatalf("ping: %v %v", rtt, err)
		}
	})
}

func TestPingDuringRunningChunk(t *testing.T) {
	c := start(t, false, nil).dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Eval(ctx, "print('go')\nwhile True: pass", func(string) { close(started) })
		done <- err
	}()
	<-started
	// Side errands do not wait behind the running chunk.
	if _, err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Names(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(testCtx(t), "os.ge"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled chunk succeeded")
	}
}

func TestNamesCompleteGetPutResetInfo(t *testing.T) {
	c := start(t, false, nil).dial(t)
	ctx := testCtx(t)
	eval(t, c, "alpha = [1, 2, 3]\ndef f(): pass")
	names, err := c.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, n := range names {
		have[n.Name] = n.Type
	}
	if have["alpha"] != "list" || have["f"] != "function" || have["os"] != "" {
		t.Fatalf("names = %+v", names)
	}
	comp, err := c.Complete(ctx, "os.ge")
	if err != nil || strings.Join(comp, ",") != "os.getcwd,os.getenv,os.getpid" {
		t.Fatalf("complete os.ge = %v %v", comp, err)
	}
	val := transport.Tuple(transport.String("a"), transport.Float(1.5), transport.None())
	if err := c.Put(ctx, "put_here", val); err != nil {
		t.Fatal(err)
	}
	if v := eval(t, c, "put_here[1] * 2"); !v.Equal(transport.Float(3)) {
		t.Fatalf("got %+v", v)
	}
	_, err = c.Get(ctx, "nope")
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindNotFound {
		t.Fatalf("get nope: %v", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Eval(ctx, "alpha", nil); !errors.As(err, &re) {
		t.Fatalf("alpha survived reset: %v", err)
	}
	info, err := c.HostInfo(ctx)
	if err != nil || info.Protocol != transport.ProtocolVersion || info.OS == "" {
		t.Fatalf("info %+v %v", info, err)
	}
}

func TestResumeSession(t *testing.T) {
	ts := start(t, false, nil)
	c := ts.dial(t)
	eval(t, c, "x = 42")
	att := c.Attachment()
	c.Close()

	o := ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	c2 := ts.dialWith(t, o)
	if !c2.Attachment().Resumed {
		t.Fatal("not resumed")
	}
	if v := eval(t, c2, "x"); !v.Equal(transport.Int(42)) {
		t.Fatalf("x = %+v", v)
	}
	if last := c2.Attachment().Last; last == nil || last.State != "done" {
		t.Fatalf("last chunk %+v", last)
	}

	o.Secret = strings.Repeat("0", len(att.Secret))
	_, err := transport.Dial(testCtx(t), ts.addr, o)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindAuth {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestNamedNamespaceIsShared(t *testing.T) {
	ts := start(t, false, nil)
	o := ts.opts
	o.NS = "team"
	a := ts.dialWith(t, o)
	b := ts.dialWith(t, o)
	eval(t, a, "shared = 7")
	if v := eval(t, b, "shared * 6"); !v.Equal(transport.Int(42)) {
		t.Fatalf("got %+v", v)
	}
}

func TestSessionsRunInParallel(t *testing.T) {
	ts := start(t, false, nil)
	a, b := ts.dial(t), ts.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Eval(ctx, "print('x')\nwhile True: pass", func(string) { close(started) })
		done <- err
	}()
	<-started
	if v := eval(t, b, "1 + 1"); !v.Equal(transport.Int(2)) {
		t.Fatalf("got %+v", v)
	}
	cancel()
	<-done
}

func TestSessionsList(t *testing.T) {
	ts := start(t, false, nil)
	a, b := ts.dial(t), ts.dial(t)
	eval(t, a, "x = 1\ny = 2")
	list, err := b.Sessions(testCtx(t))
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions %+v %v", list, err)
	}
	if list[0].Names != 2 || list[0].Attached != 1 || list[0].Mine || !list[1].Mine || len(list[0].ID) != 8 {
		t.Fatalf("sessions %+v", list)
	}
}

func TestServeAfterCloseClosesListener(t *testing.T) {
	srv, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener still open")
	}
}

func TestChunkWaitingBehindAnotherCanBeCancelled(t *testing.T) {
	ts := start(t, false, nil)
	o := ts.opts
	o.NS = "shared"
	a, b := ts.dialWith(t, o), ts.dialWith(t, o)
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := a.Eval(actx, "print('go')\nwhile True: pass", func(string) { close(started) })
		done <- err
	}()
	<-started
	_, err := b.Exec(testCtx(t), transport.EvalRequest{Src: "1 + 1", Deadline: 100 * time.Millisecond}, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Kind() != transport.KindDeadline || !strings.Contains(re.Info.Msg, "never ran") {
		t.Fatalf("waiting chunk: %v", err)
	}
	acancel()
	<-done
	if v := eval(t, b, "2 + 2"); !v.Equal(transport.Int(4)) {
		t.Fatalf("after: %+v", v)
	}
}
