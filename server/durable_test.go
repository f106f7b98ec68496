package server_test

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
	bolt "go.etcd.io/bbolt"
)

// restartable runs servers one after another on the same state dir.
type restartable struct {
	dir string
	ts  *testServer
}

func (r *restartable) start(t *testing.T) *testServer {
	r.ts = start(t, true, func(c *server.Config) { c.StateDir = r.dir })
	return r.ts
}

// stop shuts the current server down (a clean stop; the kill -9 case is
// in cmd/rshell's process tests).
func (r *restartable) stop(t *testing.T) {
	if err := r.ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNamespaceSurvivesRestart(t *testing.T) {
	r := &restartable{dir: t.TempDir()}
	ts := r.start(t)
	c := ts.dial(t)
	eval(t, c, "x = 21\nx *= 2")
	if _, err := c.Exec(testCtx(t), transport.EvalRequest{Src: remoteCode, File: "remote_code.star"}, nil); err != nil {
		t.Fatal(err)
	}
	eval(t, c, "it = os") // a module handle: reported as not restored, never dropped silently
	att := c.Attachment()
	c.Close()
	r.stop(t)

	ts = r.start(t)
	o := ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	c = ts.dialWith(t, o)
	got := c.Attachment()
	if !got.Resumed || len(got.NotRestored) != 1 || !strings.HasPrefix(got.NotRestored[0], "it (") {
		t.Fatalf("attachment %+v", got)
	}
	if v := eval(t, c, "x"); !v.Equal(transport.Int(42)) {
		t.Fatalf("x = %+v", v)
	}
	if v := eval(t, c, "fib(3)"); !v.Equal(transport.List(transport.Int(1), transport.Int(1), transport.Int(2))) {
		t.Fatalf("fib(3) = %+v", v)
	}
	if last := got.Last; last == nil || last.State != "done" {
		t.Fatalf("last chunk %+v", last)
	}
	// The wrong secret is still refused after a restart.
	o.Secret = strings.Repeat("f", len(att.Secret))
	if _, err := transport.Dial(testCtx(t), ts.addr, o); err == nil {
		t.Fatal("wrong secret accepted")
	}
}

func TestResetClearsTheStore(t *testing.T) {
	r := &restartable{dir: t.TempDir()}
	c := r.start(t).dial(t)
	eval(t, c, "x = 1")
	if err := c.Reset(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	eval(t, c, "y = 2")
	att := c.Attachment()
	c.Close()
	r.stop(t)
	ts := r.start(t)
	o := ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	c = ts.dialWith(t, o)
	names, err := c.Names(testCtx(t))
	if err != nil || len(names) != 1 || names[0].Name != "y" {
		t.Fatalf("names after reset and restart: %+v %v", names, err)
	}
}

func TestCorruptRecordsAreQuarantined(t *testing.T) {
	r := &restartable{dir: t.TempDir()}
	c := r.start(t).dial(t)
	eval(t, c, "good = 1\nbad = 2")
	att := c.Attachment()
	c.Close()
	r.stop(t)

	db, err := bolt.Open(filepath.Join(r.dir, "sessions.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("names")).Bucket([]byte(att.Session)).Put([]byte("bad"), []byte{0xff, 0x00})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	ts := r.start(t)
	if !strings.Contains(ts.logs.String(), "quarantined a corrupt name record") {
		t.Fatalf("log: %s", ts.logs.String())
	}
	o := ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	c = ts.dialWith(t, o)
	if v := eval(t, c, "good"); !v.Equal(transport.Int(1)) {
		t.Fatalf("good = %+v", v)
	}
}

func TestUnreadableStoreIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sessions.db"), []byte("this is not a bbolt file, not at all........"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &restartable{dir: dir}
	ts := r.start(t)
	eval(t, ts.dial(t), "1")
	matches, _ := filepath.Glob(filepath.Join(dir, "sessions.db.corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("moved aside: %v; log %s", matches, ts.logs.String())
	}
}

// A full or read-only state dir cannot be made here as root (file modes
// do not bind root); closing the store under the server gives every write
// the same failure.
func TestStoreWriteFailureWarns(t *testing.T) {
	dir := t.TempDir()
	logs := &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{StateDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	c, err := transport.Dial(testCtx(t), ln.Addr().String(), transport.Options{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server.BreakStoreForTest(srv)
	r, err := c.Exec(testCtx(t), transport.EvalRequest{Src: "x = 1\nx + 1"}, nil)
	if err != nil || !r.Value.Equal(transport.Int(2)) {
		t.Fatalf("result %+v %v", r, err)
	}
	if !strings.Contains(r.Warn, "not durable") {
		t.Fatalf("warn %q", r.Warn)
	}
	if v := eval(t, c, "x"); !v.Equal(transport.Int(1)) {
		t.Fatal("namespace lost")
	}
}
