package repl_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// testServer is a real server on loopback, shut down by t.Cleanup.
type testServer struct {
	addr string
	opts transport.Options
	srv  *server.Server
}

func startServer(t *testing.T, plaintext bool) *testServer {
	t.Helper()
	tok := []byte(strings.Repeat("t0k3n", 8))
	cfg := server.Config{Token: tok}
	opts := transport.Options{Token: tok, Plaintext: plaintext, Agent: "repl-test"}
	if !plaintext {
		certPEM, keyPEM, err := transport.SelfSignedPEM()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = transport.ServerTLSConfig(cert, nil)
		opts.Trust = transport.TrustOptions{Fingerprint: transport.Fingerprint(cert.Certificate[0])}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return &testServer{addr: ln.Addr().String(), opts: opts, srv: srv}
}

func (s *testServer) spec(name string) repl.HostSpec {
	return repl.HostSpec{Name: name, Addr: s.addr, Options: s.opts}
}

// session is one scripted run of the shell.
type session struct {
	hosts       []repl.HostSpec
	options     transport.Options // for :connect
	lines       []string
	interactive bool
	color       bool
	history     string
	timeout     time.Duration
}

type result struct {
	out, err string // err is empty when interactive (all goes to out)
	status   int
}

func (s session) run(t *testing.T) result {
	t.Helper()
	var out, errb bytes.Buffer
	cfg := repl.Config{
		Hosts:       s.hosts,
		Options:     s.options,
		Out:         &out,
		Err:         &errb,
		Color:       s.color,
		Width:       80,
		Interactive: s.interactive,
		HistoryPath: s.history,
		Timeout:     s.timeout,
	}
	sr := &repl.ScriptReader{Lines: s.lines}
	if s.interactive {
		sr.Echo = &out
	}
	cfg.Lines = sr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status := repl.Run(ctx, cfg)
	return result{out: out.String(), err: errb.String(), status: status}
}

var (
	sessionRE = regexp.MustCompile(`session [0-9a-f]{8}…`)
	hostsRE   = regexp.MustCompile(`(?m)(connected|lost|closed)(\s+)(\S+ ms|-)(\s+)[0-9a-f]{8}`)
	rttRE     = regexp.MustCompile(`\d+\.\d\d ms`)
)

// mask makes a transcript deterministic: addresses, session ids, round
// trips, the platform and temporary directories vary from run to run.
func mask(text string, servers map[string]*testServer, dirs ...string) string {
	for name, s := range servers {
		m := name + ":PORT"
		if pad := len(s.addr) - len(m); pad > 0 { // keep tables aligned
			m += strings.Repeat(" ", pad)
		}
		text = strings.ReplaceAll(text, s.addr, m)
	}
	for _, d := range dirs {
		text = strings.ReplaceAll(text, d, "$TMP")
	}
	text = sessionRE.ReplaceAllString(text, "session XXXXXXXX…")
	text = hostsRE.ReplaceAllString(text, "${1}${2}${3}${4}XXXXXXXX")
	text = rttRE.ReplaceAllString(text, "N.NN ms")
	text = strings.ReplaceAll(text, runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH")
	text = strings.ReplaceAll(text, "\x1b", `\e`)
	return text
}

// updating reports the shared -update flag of the package's golden tests.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares got with testdata/transcripts/name, or rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "transcripts", name)
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./repl/ -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("transcript %s differs (go test ./repl/ -update rewrites it; review the diff)\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

var seedLines = []string{
	"x = 21",
	"x *= 2",
	"x",
	`scores = {"Foo": 10}`,
	`scores["Foo"] += 1`,
	`scores["Bar"] = 42`,
	"scores",
	`scores["Bar"] += 58`,
	"scores",
	`sys.version.startswith("rshell ")`,
	"type(os.uname()), os.uname().sysname != \"\"",
	"y = 0",
	"z = x/y",
	"x",
	"def double(n):",
	"    out = []",
	"    for i in range(n):",
	"        out.append(2 * i)",
	"    return out",
	"",
	"double(4)",
	"[",
	"  1,",
	"  2,",
	"]",
	`print("hello\x1b[31m", 1, 2)`,
	"for i in range(3):",
	"    print(i)",
	"",
	"def broken(:",
	":foo",
	":hist",
	":ns",
	":ns d*",
	":timeout 300ms",
	":timeout",
	"time.sleep(5)",
	"1 + 1",
	":timeout off",
	"unfinished = [1,",
	repl.Interrupt,
	"unfinished",
}

func TestTranscriptSeed(t *testing.T) {
	for _, plain := range []bool{false, true} {
		name := "tls"
		if plain {
			name = "plaintext"
		}
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, plain)
			r := session{hosts: []repl.HostSpec{srv.spec("web1")}, lines: seedLines, interactive: true}.run(t)
			if r.status != 0 {
				t.Errorf("status %d", r.status)
			}
			// The same transcript over TLS and plain TCP.
			golden(t, "seed.txt", mask(r.out, map[string]*testServer{"web1": srv}))
		})
	}
}

func TestTranscriptColor(t *testing.T) {
	srv := startServer(t, false)
	r := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, color: true, lines: []string{
		`scores = {"Foo": 11, "Bar": 100}`,
		"scores",
		"x = 42",
		"y = 0",
		"z = x/y",
		"1 +",
		":nope",
	}}.run(t)
	out := mask(r.out, map[string]*testServer{"web1": srv})
	if !strings.Contains(out, `\e[`) {
		t.Errorf("no color in %q", out)
	}
	golden(t, "color.txt", out)
}

const remoteCode = `# the seed's remote_code.star
def fib(n):
    out = []
    a, b = 1, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out

def fail(n):
    return fib(n)[n]

greeting = "hello"
`

func TestTranscriptLoad(t *testing.T) {
	srv := startServer(t, false)
	dir := t.TempDir()
	file := filepath.Join(dir, "remote_code.star")
	if err := os.WriteFile(file, []byte(remoteCode), 0o644); err != nil {
		t.Fatal(err)
	}
	r := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, lines: []string{
		":load " + file,
		"fib(10)",
		"fail(3)",
		":load " + file,
		":load " + filepath.Join(dir, "missing.star"),
		":load",
	}}.run(t)
	golden(t, "load.txt", mask(r.out, map[string]*testServer{"web1": srv}, dir))
}

func TestTranscriptHosts(t *testing.T) {
	a, b := startServer(t, false), startServer(t, false)
	servers := map[string]*testServer{"web1": a, "db1": b}
	r := session{hosts: []repl.HostSpec{a.spec("web1")}, options: b.opts, interactive: true, lines: []string{
		"x = 42",
		`scores = {"Foo": 11, "Bar": 100}`,
		":connect " + b.addr + " as db1",
		":use db1",
		"x",
		":use web1",
		":copy scores db1",
		":copy x db1 y",
		":copy nothing db1",
		":use db1",
		"scores",
		"y",
		":hosts",
		":use",
		":close web1",
		":hosts",
		":use 127.0.0.1:1",
		":quit",
		"x",
	}}.run(t)
	golden(t, "hosts.txt", mask(r.out, servers))
}

func TestTranscriptGet(t *testing.T) {
	srv := startServer(t, false)
	dir := t.TempDir()
	r := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, lines: []string{
		`scores = {"Foo": 11, "Bar": 100, 3: [1, 2.5, None, True, (1, 2)], "big": 123456789012345678901234567890, "b": b"\x00\x01"}`,
		":get scores " + filepath.Join(dir, "scores.json"),
		"nan = float(\"nan\")",
		":get nan " + filepath.Join(dir, "nan.json"),
		"bad = {\"f\": len}",
		":get bad " + filepath.Join(dir, "bad.json"),
	}}.run(t)
	out := mask(r.out, map[string]*testServer{"web1": srv}, dir)
	data, err := os.ReadFile(filepath.Join(dir, "scores.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "get.txt", out+"--- scores.json\n"+string(data))
	if _, err := os.Stat(filepath.Join(dir, "nan.json")); err == nil {
		t.Error("nan.json written despite the error")
	}
}

func TestNonInteractive(t *testing.T) {
	srv := startServer(t, false)
	ok := session{hosts: []repl.HostSpec{srv.spec("web1")}, lines: []string{"x = 21", "x *= 2", "x"}}.run(t)
	if ok.out != "42\n" || ok.err != "" || ok.status != 0 {
		t.Errorf("got out %q err %q status %d, want 42", ok.out, ok.err, ok.status)
	}
	bad := session{hosts: []repl.HostSpec{srv.spec("web1")}, lines: []string{
		"print('before')", "1/0", "'after'", "def f():", "    return 3", "", "f()", ":nope",
	}}.run(t)
	if bad.status != 1 {
		t.Errorf("status %d, want 1", bad.status)
	}
	if bad.out != "before\n\"after\"\n3\n" {
		t.Errorf("stdout %q", bad.out)
	}
	if !strings.Contains(bad.err, "Remote traceback from web1") || !strings.Contains(bad.err, "unknown command :nope") {
		t.Errorf("stderr %q", bad.err)
	}
	if strings.Contains(bad.err+bad.out, "\x1b") {
		t.Errorf("color when not interactive")
	}
	// A chunk left open at the end of input still runs.
	tail := session{hosts: []repl.HostSpec{srv.spec("web1")}, lines: []string{"def g():", "    return 7", "g()"}}.run(t)
	if tail.status != 1 { // "g()" is inside the def block: a syntax error
		t.Logf("tail: %+v", tail)
	}
	unreachable := session{hosts: []repl.HostSpec{{Name: "x", Addr: "127.0.0.1:1"}}, lines: []string{"1"}}.run(t)
	if unreachable.status != 1 || !strings.Contains(unreachable.err, "Error: cannot reach 127.0.0.1:1") {
		t.Errorf("unreachable: %+v", unreachable)
	}
}

func TestTransfer(t *testing.T) {
	srv := startServer(t, false)
	dir := t.TempDir()
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	local := filepath.Join(dir, "blob.bin")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "remote", "blob-up.bin")
	if err := os.Mkdir(filepath.Dir(remote), 0o700); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "blob-back.bin")
	r := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, lines: []string{
		":upload " + local + " " + remote,
		":download " + remote + " " + back,
		":download " + filepath.Join(dir, "nope.bin"),
	}}.run(t)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded file differs from the uploaded one")
	}
	out := mask(r.out, map[string]*testServer{"web1": srv}, dir)
	for _, want := range []string{"uploaded $TMP/blob.bin to web1:$TMP/remote/blob-up.bin (3.0 MiB, sha256 ", "downloaded web1:$TMP/remote/blob-up.bin to $TMP/blob-back.bin", "Error: download:"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if !strings.Contains(out, "[===") {
		t.Errorf("no progress bar for a 3 MiB file:\n%q", out)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	srv := startServer(t, false)
	path := filepath.Join(t.TempDir(), "state", "history")
	first := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, history: path, lines: []string{
		"x = 1",
		"def f():",
		"    return x",
		"",
		" secret = 2",
		":ns",
	}}.run(t)
	if first.status != 0 {
		t.Fatalf("status %d\n%s", first.status, first.out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v", st.Mode().Perm())
	}
	second := session{hosts: []repl.HostSpec{srv.spec("web1")}, interactive: true, history: path, lines: []string{
		":history",
		":history def",
		":history 1",
	}}.run(t)
	golden(t, "history.txt", mask(second.out, map[string]*testServer{"web1": srv}))

	// Not interactive: nothing recorded.
	path2 := filepath.Join(t.TempDir(), "history")
	session{hosts: []repl.HostSpec{srv.spec("web1")}, history: path2, lines: []string{"x = 1"}}.run(t)
	if _, err := os.Stat(path2); err == nil {
		t.Error("history written by a non-interactive run")
	}
}

func TestCompletion(t *testing.T) {
	a, b := startServer(t, false), startServer(t, false)
	dir := t.TempDir()
	for _, f := range []string{"remote_code.star", "readme.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "rdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts, ok := repl.NewTestShell(ctx, repl.Config{
		Hosts: []repl.HostSpec{a.spec("web1"), b.spec("web2")}, Out: &bytes.Buffer{}, Err: &bytes.Buffer{},
	})
	if !ok {
		t.Fatal("cannot connect")
	}
	defer ts.Close()
	ts.Line("fizz = 1")
	ts.Line("fibs = [1]")
	// The first Tab may find the cache cold; the answer comes within the
	// fetch time and is then served from the cache.
	complete := func(line string) []string {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, _ := ts.Complete(line)
			if c != nil || time.Now().After(deadline) {
				return c
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cases := []struct {
		line string
		want []string
	}{
		{":us", []string{":use "}},
		{":h", []string{":help ", ":history ", ":hosts "}},
		{":use w", []string{"web1 ", "web2 "}},
		{":close web2", []string{"web2 "}},
		{":copy fi", []string{"fibs ", "fizz "}},
		{":copy fizz w", []string{"web1 ", "web2 "}},
		{":load " + dir + "/r", []string{dir + "/rdir/", dir + "/readme.txt ", dir + "/remote_code.star "}},
		{"fi", []string{"fibs", "fizz"}},
		{"y = os.getc", []string{"os.getcwd"}},
		{"print(os.ge", []string{"os.getcwd", "os.getenv", "os.getpid"}},
		{"math.fl", []string{"math.floor"}},
	}
	for _, c := range cases {
		got := complete(c.line)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("complete %q = %q, want %q", c.line, got, c.want)
		}
	}
	// A chunk changes the namespace: the cache follows.
	ts.Line("fixed = 2")
	if got := complete("fix"); strings.Join(got, "|") != "fixed" {
		t.Errorf("after a chunk: %q", got)
	}
	// Cached answers are fast.
	t0 := time.Now()
	for range 100 {
		ts.Complete("print(os.ge")
	}
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("100 cached completions took %v", d)
	}
}

func TestLostHost(t *testing.T) {
	srv := startServer(t, false)
	out := &syncBuffer{}
	lines := &blockingReader{next: make(chan string)}
	done := make(chan int)
	go func() {
		done <- repl.Run(context.Background(), repl.Config{
			Hosts: []repl.HostSpec{srv.spec("web1")}, Lines: lines, Out: out, Err: out, Interactive: true,
			Timeout: time.Second, // a chunk waits at most this long for the host to come back
		})
	}()
	lines.next <- "x = 1"
	lines.next <- "" // returns once the loop has run x = 1
	srv.srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "! lost web1") {
		if time.Now().After(deadline) {
			t.Fatalf("no lost notice in %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	lines.next <- "x"
	lines.next <- ""
	close(lines.next)
	if st := <-done; st != 0 {
		t.Errorf("status %d", st)
	}
	if got := out.String(); !strings.Contains(got, "! lost web1 (the connection closed); reconnecting…") ||
		!strings.Contains(got, "Error: web1 did not come back within 1s (last try: cannot reach") {
		t.Errorf("no reconnect failure in %q", got)
	}
}

// blockingReader hands out lines as the test sends them.
type blockingReader struct{ next chan string }

func (b *blockingReader) ReadLine(string) (string, error) {
	line, ok := <-b.next
	if !ok {
		return "", io.EOF
	}
	return line, nil
}

// syncBuffer is a bytes.Buffer shared between the shell and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
