package repl_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// fleetToken is the token of every fleet server.
var fleetToken = []byte(strings.Repeat("f1eet", 8))

var (
	fleetCertOnce sync.Once
	fleetCert     tls.Certificate
)

// fleetServer is one of many servers on loopback.
type fleetServer struct {
	name, addr string
	srv        *server.Server
	ln         net.Listener
	done       chan struct{}
}

// stop stops the server. It closes the listener itself too: a Serve that
// starts after Close returns at once and leaves its listener open.
func (f *fleetServer) stop() {
	f.srv.Close()
	f.ln.Close()
	<-f.done
}

// fleet is n servers on loopback (TLS unless plaintext) and a config file
// naming them web01…webNN, all in group @web; the config's token file and
// the servers' certificate fingerprint are the fleet's.
type fleet struct {
	servers []*fleetServer
	config  string
	dir     string
}

func startFleet(t testing.TB, n int, plaintext bool, extra string) *fleet {
	t.Helper()
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, fleetToken, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Token: fleetToken}
	fp := ""
	if !plaintext {
		fleetCertOnce.Do(func() {
			c, k, err := transport.SelfSignedPEM()
			if err != nil {
				panic(err)
			}
			if fleetCert, err = tls.X509KeyPair(c, k); err != nil {
				panic(err)
			}
		})
		cfg.TLS = transport.ServerTLSConfig(fleetCert, nil)
		fp = transport.Fingerprint(fleetCert.Certificate[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[defaults]\ntoken_file = %q\nplaintext = %v\n", "token", plaintext)
	if fp != "" {
		fmt.Fprintf(&b, "fingerprint = %q\n", fp)
	}
	f := &fleet{dir: dir}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fs := &fleetServer{name: fmt.Sprintf("web%02d", i+1), addr: ln.Addr().String(), srv: srv, ln: ln, done: make(chan struct{})}
		go func() { defer close(fs.done); _ = srv.Serve(ln) }()
		t.Cleanup(fs.stop)
		f.servers = append(f.servers, fs)
		fmt.Fprintf(&b, "\n[[hosts]]\nname = %q\naddress = %q\n", fs.name, fs.addr)
	}
	fmt.Fprintf(&b, "\n%s\n[groups]\nweb = [\"web[01-%02d]\"]\n", extra, n)
	f.config = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(f.config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// lockedBuffer is a buffer the shell's goroutines write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// when set, called (under the lock) after each write
	watch func(string)
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	if l.watch != nil {
		l.watch(l.b.String())
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runFleet runs a scripted, non-interactive shell on the fleet's config.
func (f *fleet) run(t *testing.T, ctx context.Context, target string, lines ...string) (out, errs string, status int) {
	t.Helper()
	var o, e lockedBuffer
	status = f.runTo(ctx, target, &o, &e, lines...)
	return o.String(), e.String(), status
}

func (f *fleet) runTo(ctx context.Context, target string, o, e *lockedBuffer, lines ...string) int {
	return repl.Run(ctx, repl.Config{
		Target:        target,
		InventoryPath: f.config,
		Options:       transport.Options{Agent: "fanout-test", CancelGrace: 5 * time.Second},
		Lines:         &repl.ScriptReader{Lines: lines},
		Out:           o, Err: e, Width: 80,
		DialTimeout: 10 * time.Second,
	})
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFanoutBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ text, want string }{
		{"[[hosts]]\nname = \"a\"\n[groups]\nweb = [\"a\", \"b\"]\n", "config.toml:4: group web names unknown host b"},
		{"[[hosts]]\nnam = \"a\"\n", `config.toml:2:1: unknown key "hosts.nam"`},
	} {
		p := filepath.Join(dir, "config.toml")
		os.WriteFile(p, []byte(c.text), 0o600)
		_, errs, status := (&fleet{config: p}).run(t, testContext(t), "@web", "1")
		if status == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("status %d, stderr %q; want %q", status, errs, c.want)
		}
	}
}

func TestFanoutFiftyHosts(t *testing.T) {
	f := startFleet(t, 50, false, "")
	ctx := testContext(t)
	out, errs, status := f.run(t, ctx, "@web",
		`x = 42`,
		`x`,
		`print("hello")`,
		`d = {"a": 1, "b": 2, "c": [1, 5]}`,
		`:use web[01-03,05]`,
		`y = 1`,
		`z = 1`,
		`:use web[04,06-50]`,
		`z = 2`,
		`:use web07`,
		`d["b"] = 3`,
		`d["c"][1] = 2`,
		`:use @web`,
		`z`,
		`:diff d`,
		`:diff x`,
		`:diff y`,
		`1/0 if z == 1 else z`,
	)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	if status != 1 {
		t.Errorf("status %d, want 1 (a chunk failed on some hosts)", status)
	}
	for _, want := range []string{
		"web[01-50] (50): 42\n",
		"web[01-50] (50):\n    hello\n",
		"web[04,06-50] (46): 2\nweb[01-03,05] (4): 1\n",
		// :diff d: only what differs
		"d[\"b\"]:\n    web[01-06,08-50] (49): 2\n    web07: 3\n",
		"d[\"c\"][1]:\n    web[01-06,08-50] (49): 5\n    web07: 2\n",
		"d differs at 2 places across 50 hosts\n",
		"x is the same on all 50 hosts\n",
		"y[]", // placeholder, replaced below
	} {
		if want == "y[]" {
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if strings.Contains(out, `d["a"]`) {
		t.Error(":diff showed a key that does not differ")
	}
	if !regexp.MustCompile(`y:\n    web\[01-03,05\] \(4\): 1\n    web\[04,06-50\] \(46\): <undefined[^>]*>\n`).MatchString(out) &&
		!regexp.MustCompile(`y:\n    web\[01-03,05\] \(4\): 1\n    web\[04,06-50\] \(46\): <[^>]+>\n`).MatchString(out) {
		t.Errorf(":diff y does not show where y is missing")
	}
	if !strings.Contains(out, "web[04,06-50] (46): 2\n") {
		t.Errorf("the last chunk's successes are not gathered")
	}
	if !regexp.MustCompile(`Remote traceback from web\[01-03,05\] \(4\)`).MatchString(errs) {
		t.Errorf("the failure is not gathered under its hosts")
	}
	if !regexp.MustCompile(`(?m)^50 ok · slowest web\d\d `).MatchString(errs) {
		t.Errorf("no counts line")
	}
	if !strings.Contains(errs, "46 ok, 4 failed · slowest web") {
		t.Errorf("no counts of a partial failure")
	}
}

func TestFanoutPartialFailure(t *testing.T) {
	f := startFleet(t, 50, true, "")
	ctx := testContext(t)
	for _, s := range f.servers[9:14] { // web10..web14
		s.stop()
	}
	out, errs, status := f.run(t, ctx, "@web", `1 + 1`, `:ping`)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	if status != 1 {
		t.Errorf("status %d", status)
	}
	if !strings.Contains(out, "web[01-09,15-50] (45): 2\n") {
		t.Errorf("successes not folded")
	}
	if !strings.Contains(errs, "web[10-14] (5): unreachable (connection refused") {
		t.Errorf("unreachable hosts not folded with their reason")
	}
	if !strings.Contains(errs, "45 ok, 5 unreachable") {
		t.Errorf("no counts")
	}
	if !strings.Contains(out, "45 hosts: min ") {
		t.Errorf(":ping on a group")
	}
}

// A host that accepts connections but never answers holds nobody past the
// chunk deadline.
func TestFanoutSilentHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	f := startFleet(t, 5, true, fmt.Sprintf("[[hosts]]\nname = \"silent\"\naddress = %q\n", ln.Addr().String()))
	ctx := testContext(t)
	t0 := time.Now()
	out, errs, _ := f.run(t, ctx, "web01", `:timeout 1s`, `:use web[01-05],silent`, `time.sleep(0.2) or 7`)
	d := time.Since(t0)
	t.Logf("%v\nstdout:\n%s\nstderr:\n%s", d, out, errs)
	if !strings.Contains(out, "web[01-05] (5): 7") || !strings.Contains(errs, "silent: unreachable") {
		t.Errorf("the silent host is not reported")
	}
	// :use and the chunk each wait at most the deadline for it.
	if d > 2*time.Second+fanBound {
		t.Errorf("took %v", d)
	}
}

const fanBound = 2 * time.Second

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func TestFanoutDeadline(t *testing.T) {
	f := startFleet(t, 20, true, "")
	ctx := testContext(t)
	var o, e lockedBuffer
	t0 := time.Now()
	repl.Run(ctx, repl.Config{
		Target: "@web", InventoryPath: f.config, Timeout: 500 * time.Millisecond,
		Lines: &repl.ScriptReader{Lines: []string{"while True: pass", ""}},
		Out:   &o, Err: &e,
	})
	d := time.Since(t0)
	t.Logf("%v\n%s%s", d, o.String(), e.String())
	// Twenty busy loops on this machine's few CPUs (slower still under the
	// race detector) may keep a server from answering in time: such a host
	// is reported unreachable, never waited for.
	m := regexp.MustCompile(`(?m)^(\d+) failed(?:, (\d+) unreachable)? · slowest`).FindStringSubmatch(e.String())
	if m == nil || !strings.Contains(e.String(), "Error: deadline exceeded after 500ms") ||
		!strings.Contains(e.String(), "Remote traceback from web[") {
		t.Fatalf("deadline not gathered")
	}
	if n := atoi(m[1]) + atoi(m[2]); n != 20 {
		t.Errorf("%d hosts reported", n)
	}
	if d > 500*time.Millisecond+fanBound {
		t.Errorf("took %v", d)
	}
}

// Ctrl-C (the shell's context cancelled) while `while True: pass` runs on
// every host stops it on every host, promptly.
func TestFanoutCancelAll(t *testing.T) {
	f := startFleet(t, 50, false, "")
	ctx, cancel := context.WithCancel(testContext(t))
	var t0 time.Time
	started := make(chan struct{})
	var once sync.Once
	o := &lockedBuffer{watch: func(s string) {
		if strings.Count(s, ": go\n") == 50 {
			once.Do(func() { close(started) })
		}
	}}
	e := &lockedBuffer{}
	done := make(chan int)
	go func() {
		done <- f.runTo(ctx, "@web", o, e, ":gather off", "print('go')\nwhile True:\n    pass\n")
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("the chunk did not start everywhere: %q %q", o.String(), e.String())
	}
	t0 = time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	d := time.Since(t0)
	t.Logf("%v\n%s", d, e.String())
	if got := strings.Count(e.String(), ": cancelled\n"); got != 50 {
		t.Errorf("%d hosts reported cancelled, want 50", got)
	}
	if !strings.Contains(e.String(), "50 cancelled") {
		t.Errorf("no counts")
	}
	if d > fanBound {
		t.Errorf("cancel took %v", d)
	}
	for _, s := range f.servers[:3] { // the servers are idle again
		c, err := transport.Dial(context.Background(), s.addr, transport.Options{Token: fleetToken, Trust: transport.TrustOptions{Fingerprint: transport.Fingerprint(fleetCert.Certificate[0])}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Eval(context.Background(), "1+1", nil)
		c.Close()
		if err != nil || v.Int != 2 {
			t.Errorf("%s after cancel: %v %v", s.name, v, err)
		}
	}
}

func TestExecJSONAndStatus(t *testing.T) {
	f := startFleet(t, 50, true, "")
	ctx := testContext(t)
	exec := func(target, src string, asJSON bool) (string, string, int) {
		var o, e lockedBuffer
		code := repl.Exec(ctx, repl.Config{Target: target, InventoryPath: f.config, Out: &o, Err: &e},
			repl.Job{Src: src, JSON: asJSON})
		return o.String(), e.String(), code
	}
	out, errs, code := exec("@web", `{"n": 1, "s": "x"}`, true)
	if code != 0 {
		t.Fatalf("status %d: %s", code, errs)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	seen := map[string]bool{}
	for sc.Scan() {
		var j map[string]any
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		seen[j["host"].(string)] = true
		v, _ := json.Marshal(j["value"])
		if j["ok"] != true || string(v) != `{"n":1,"s":"x"}` || j["error"] != nil || j["output"] != "" {
			t.Errorf("line %s", sc.Text())
		}
		if _, ok := j["duration_ms"].(float64); !ok {
			t.Errorf("no duration_ms: %s", sc.Text())
		}
	}
	if len(seen) != 50 {
		t.Errorf("%d hosts in the JSON lines", len(seen))
	}
	// Some chunk failed: 1. Output and errors in JSON.
	out, _, code = exec("web[01-03]", "print('p')\n1 // 0 if True else 0", true)
	if code != 1 || strings.Count(out, `"ok":false`) != 3 || !strings.Contains(out, `"output":"p\n"`) ||
		!strings.Contains(out, `"status":"failed"`) || !strings.Contains(out, `"error":"`) {
		t.Errorf("failed chunk: %d %s", code, out)
	}
	// A value JSON cannot hold: value null, repr and value_error say it.
	out, _, code = exec("web01", "len", true)
	if code != 0 || !strings.Contains(out, `"value":null`) || !strings.Contains(out, `"value_error":`) || !strings.Contains(out, `"repr":"<built-in function len>"`) {
		t.Errorf("ref value: %d %s", code, out)
	}
	// Human output is gathered.
	out, errs, code = exec("@web", "6 * 7", false)
	if code != 0 || out != "web[01-50] (50): 42\n" || !strings.HasPrefix(errs, "50 ok") {
		t.Errorf("gathered: %d %q %q", code, out, errs)
	}
	// Some host unreachable: 2, even when another failed.
	f.servers[49].stop()
	out, errs, code = exec("@web", "1 // (1 if 1 else 0)", true)
	if code != 2 || !strings.Contains(out, `"host":"web50"`) || !strings.Contains(out, `"status":"unreachable"`) {
		t.Errorf("unreachable: %d %s %s", code, out, errs)
	}
	_, errs, code = exec("@nope", "1", false)
	if code != 2 || !strings.Contains(errs, "no group @nope — groups: @web") {
		t.Errorf("bad target: %d %q", code, errs)
	}
}

func TestGroupOpenExec(t *testing.T) {
	f := startFleet(t, 10, true, "")
	ctx := testContext(t)
	g, err := repl.OpenGroup(ctx, repl.Config{Target: "@web", InventoryPath: f.config})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for range 3 {
		res := g.Exec(ctx, "1+1")
		for _, r := range res {
			if r.Status != "ok" || r.Value.Int != 2 {
				t.Fatalf("%+v", r)
			}
		}
	}
}
