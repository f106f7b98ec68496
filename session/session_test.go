package session

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/rshell/rshell/transport"
)

// evalOK runs src and returns its decoded result, failing on an error.
func evalOK(t testing.TB, s *Session, src string) transport.Value {
	t.Helper()
	b, ei := s.Eval(context.Background(), src, "", nil)
	if ei != nil {
		t.Fatalf("Eval(%q): %s error: %s (frames %+v)", src, ei.Kind, ei.Msg, ei.Frames)
	}
	v, err := transport.DecodeValue(b, 0)
	if err != nil {
		t.Fatalf("Eval(%q): decoding result: %v", src, err)
	}
	return v
}

// evalErr runs src and returns its error, failing if there is none.
func evalErr(t testing.TB, s *Session, src string) *transport.ErrorInfo {
	t.Helper()
	_, ei := s.Eval(context.Background(), src, "", nil)
	if ei == nil {
		t.Fatalf("Eval(%q) succeeded, want an error", src)
	}
	return ei
}

func wantValue(t testing.TB, got, want transport.Value) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAccumulateAcrossChunks(t *testing.T) {
	s := New(Options{})
	wantValue(t, evalOK(t, s, "x = 21"), transport.None())
	wantValue(t, evalOK(t, s, "x *= 2"), transport.None())
	wantValue(t, evalOK(t, s, "x"), transport.Int(42))
	if n := s.ChunkCount(); n != 3 {
		t.Errorf("ChunkCount = %d, want 3", n)
	}
}

func TestScoresDict(t *testing.T) {
	s := New(Options{})
	for _, src := range []string{`scores = {"Foo": 10}`, `scores["Foo"] += 1`, `scores["Bar"] = 42`, `scores["Bar"] += 58`} {
		evalOK(t, s, src)
	}
	b, ei := s.Get("scores")
	if ei != nil {
		t.Fatal(ei.Msg)
	}
	v, err := transport.DecodeValue(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, v, transport.Dict(transport.String("Foo"), transport.Int(11), transport.String("Bar"), transport.Int(100)))
	if _, ei := s.Get("nope"); ei == nil || ei.Kind != transport.KindNotFound {
		t.Errorf("Get(nope) = %+v, want notfound", ei)
	}
}

func TestLastExpressionAndUnderscore(t *testing.T) {
	s := New(Options{})
	wantValue(t, evalOK(t, s, "a = 1\nb = 2\na + b"), transport.Int(3))
	wantValue(t, evalOK(t, s, "_ * 10"), transport.Int(30))
	wantValue(t, evalOK(t, s, "_"), transport.Int(30))
	// None does not rebind _.
	evalOK(t, s, "None")
	wantValue(t, evalOK(t, s, "_"), transport.Int(30))
	// Empty and comment-only chunks.
	wantValue(t, evalOK(t, s, ""), transport.None())
	wantValue(t, evalOK(t, s, "# nothing\n\n"), transport.None())
	// Control flow at top level, a trailing expression after a loop.
	wantValue(t, evalOK(t, s, "t = 0\nfor i in range(5):\n    t += i\nt"), transport.Int(10))
	wantValue(t, evalOK(t, s, "n = 0\nwhile n < 3:\n    n += 1\nn"), transport.Int(3))
}

func TestUndefinedInLastExpressionRunsNothing(t *testing.T) {
	s := New(Options{})
	ei := evalErr(t, s, "q = 1\nundefined_name")
	if ei.Kind != transport.KindResolve {
		t.Fatalf("kind %q, want resolve", ei.Kind)
	}
	if _, ei := s.Get("q"); ei == nil {
		t.Error("q was bound although the chunk did not resolve")
	}
}

func TestSysAndUname(t *testing.T) {
	s := New(Options{})
	v := evalOK(t, s, "sys.version")
	if !strings.HasPrefix(v.Str, "rshell "+Version+" (go") || !strings.HasSuffix(v.Str, ", starlark)") {
		t.Errorf("sys.version = %q", v.Str)
	}
	wantValue(t, evalOK(t, s, "sys.platform"), transport.String(runtime.GOOS))
	wantValue(t, evalOK(t, s, "sys.pid"), transport.Int(int64(os.Getpid())))
	u := evalOK(t, s, "os.uname()")
	if u.Kind != transport.KindStruct {
		t.Fatalf("os.uname() is a %s", u.Kind)
	}
	for _, f := range []string{"sysname", "nodename", "release", "version", "machine"} {
		if _, ok := u.Lookup(f); !ok {
			t.Errorf("os.uname() has no %s", f)
		}
	}
	if runtime.GOOS == "linux" {
		if sn, _ := u.Lookup("sysname"); sn.Str != "Linux" {
			t.Errorf("sysname = %q", sn.Str)
		}
	}
}

func TestModulesRepr(t *testing.T) {
	s := New(Options{})
	v := evalOK(t, s, "os")
	if v.Kind != transport.KindRef || v.Str != "module" || v.Repr() != `<module "os">` {
		t.Errorf("os = %+v", v)
	}
	wantValue(t, evalOK(t, s, `json.decode('{"a": [1, 2]}')`), transport.Dict(transport.String("a"), transport.List(transport.Int(1), transport.Int(2))))
	wantValue(t, evalOK(t, s, "math.floor(2.5)"), transport.Int(2))
	wantValue(t, evalOK(t, s, "type(time.time())"), transport.String("float"))
	wantValue(t, evalOK(t, s, "time.time(year=2000, month=1, day=1).year"), transport.Int(2000))
	wantValue(t, evalOK(t, s, "struct(a=1).a"), transport.Int(1))
}

func TestDivisionByZero(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "x = 1\ny = 0")
	ei := evalErr(t, s, "z = x/y")
	if ei.Kind != transport.KindRuntime || !strings.Contains(ei.Msg, "division by zero") {
		t.Fatalf("got %s %q", ei.Kind, ei.Msg)
	}
	if len(ei.Frames) == 0 {
		t.Fatal("no frames")
	}
	f := ei.Frames[len(ei.Frames)-1]
	if f.Source != "z = x/y" || f.File != "<in[2]>" || f.Line != 1 || f.Func != "<toplevel>" {
		t.Errorf("frame = %+v", f)
	}
}

const remoteCode = `# remote_code.star
def fib(n):
    out = []
    a, b = 1, 1
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out

def broken(n):
    return fib(n)[n]
`

func TestTracebackThroughEarlierChunkAndFile(t *testing.T) {
	s := New(Options{})
	if _, ei := s.Eval(context.Background(), remoteCode, "remote_code.star", nil); ei != nil {
		t.Fatal(ei.Msg)
	}
	want := transport.List()
	for _, n := range []int64{1, 1, 2, 3, 5, 8, 13, 21, 34, 55} {
		want.Items = append(want.Items, transport.Int(n))
	}
	wantValue(t, evalOK(t, s, "fib(10)"), want)

	evalOK(t, s, "def half(x):\n    return 1 // (x - x)\n")
	ei := evalErr(t, s, "half(3)")
	if len(ei.Frames) != 2 || ei.Frames[1].Func != "half" || ei.Frames[1].Source != "return 1 // (x - x)" ||
		ei.Frames[1].File != "<in[3]>" || ei.Frames[1].Line != 2 {
		t.Errorf("frames through an earlier chunk: %+v", ei.Frames)
	}

	ei = evalErr(t, s, "broken(3)")
	if !strings.Contains(ei.Msg, "out of range") {
		t.Errorf("msg %q", ei.Msg)
	}
	last := ei.Frames[len(ei.Frames)-1]
	if last.File != "remote_code.star" || last.Line != 11 || last.Source != "return fib(n)[n]" || last.Func != "broken" {
		t.Errorf("frames: %+v", ei.Frames)
	}
	// A built-in frame has a name but no file.
	ei = evalErr(t, s, `int("x")`)
	for _, f := range ei.Frames {
		if f.Func == "int" && f.File != "" {
			t.Errorf("built-in frame with a file: %+v", f)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	s := New(Options{})
	ei := evalErr(t, s, "x = 1\ny = (2 +\n")
	if ei.Kind != transport.KindSyntax || ei.File != "<in[1]>" || ei.Line == 0 || ei.Col == 0 || ei.Msg == "" {
		t.Fatalf("got %+v", ei)
	}
	ei = evalErr(t, s, "a = 1\nb = = 2")
	if ei.Line != 2 || ei.Col != 5 || ei.SrcLine != "b = = 2" {
		t.Errorf("got %+v", ei)
	}
}

func TestResolveError(t *testing.T) {
	s := New(Options{})
	ei := evalErr(t, s, "a = 1\nb = a + nope")
	if ei.Kind != transport.KindResolve || !strings.Contains(ei.Msg, "undefined: nope") || ei.Line != 2 || ei.Col != 9 || ei.SrcLine != "b = a + nope" {
		t.Fatalf("got %+v", ei)
	}
}

// startChunk runs src on a goroutine and waits until it has printed "started".
func startChunk(t *testing.T, s *Session, ctx context.Context, src string) <-chan *transport.ErrorInfo {
	t.Helper()
	started := make(chan struct{})
	var once sync.Once
	done := make(chan *transport.ErrorInfo, 1)
	go func() {
		_, ei := s.Eval(ctx, src, "", func(string) { once.Do(func() { close(started) }) })
		done <- ei
	}()
	select {
	case <-started:
	case ei := <-done:
		t.Fatalf("chunk ended before it started: %+v", ei)
	}
	return done
}

func TestCancelInfiniteLoop(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := startChunk(t, s, ctx, "print('started')\nwhile True:\n    pass\n")
	time.Sleep(5 * time.Millisecond)
	t0 := time.Now()
	cancel()
	ei := <-done
	t.Logf("while True: stopped %v after cancel", time.Since(t0))
	if ei == nil || ei.Kind != transport.KindCancelled || !strings.Contains(ei.Msg, "the remote work was stopped") {
		t.Fatalf("got %+v", ei)
	}
	if len(ei.Frames) == 0 {
		t.Error("a cancelled chunk should say where it stopped")
	}
	wantValue(t, evalOK(t, s, "1 + 1"), transport.Int(2))
}

func TestCancelSleep(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := startChunk(t, s, ctx, "print('started')\ntime.sleep(50)\n")
	t0 := time.Now()
	cancel()
	ei := <-done
	t.Logf("time.sleep stopped %v after cancel", time.Since(t0))
	if ei == nil || ei.Kind != transport.KindCancelled {
		t.Fatalf("got %+v", ei)
	}
	wantValue(t, evalOK(t, s, "2"), transport.Int(2))
}

func TestSleepDeadline(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, ei := s.Eval(ctx, "time.sleep(50)", "", nil)
	if ei == nil || ei.Kind != transport.KindDeadline || !strings.Contains(ei.Msg, "deadline exceeded after") {
		t.Fatalf("got %+v", ei)
	}
	wantValue(t, evalOK(t, s, "3"), transport.Int(3))
	// An already expired context does not run the chunk.
	_, ei = s.Eval(ctx, "boom = 1", "", nil)
	if ei == nil || ei.Kind != transport.KindDeadline {
		t.Fatalf("got %+v", ei)
	}
	if _, ei := s.Get("boom"); ei == nil {
		t.Error("chunk ran under an expired context")
	}
}

func TestMaxEvalTime(t *testing.T) {
	s := New(Options{MaxEvalTime: 30 * time.Millisecond})
	ei := evalErr(t, s, "while True:\n    pass")
	if ei.Kind != transport.KindDeadline || !strings.Contains(ei.Msg, "--max-eval-time") {
		t.Fatalf("got %+v", ei)
	}
	wantValue(t, evalOK(t, s, "4"), transport.Int(4))
}

func TestStepLimit(t *testing.T) {
	s := New(Options{MaxSteps: 10000})
	ei := evalErr(t, s, "n = 0\nwhile True:\n    n += 1")
	if ei.Kind != transport.KindLimit || !strings.Contains(ei.Msg, "--max-steps") || !strings.Contains(ei.Msg, "10000") {
		t.Fatalf("got %+v", ei)
	}
	// The budget is per chunk.
	wantValue(t, evalOK(t, s, "sum = 0\nfor i in range(100):\n    sum += i\nsum"), transport.Int(4950))
}

func TestPanickingBuiltin(t *testing.T) {
	boom := starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		panic("kaboom")
	})
	s := New(Options{Extra: starlark.StringDict{"boom": boom}})
	ei := evalErr(t, s, "def f():\n    return boom()\nf()")
	if ei.Kind != transport.KindRuntime || ei.Msg != "internal error in built-in: kaboom" {
		t.Fatalf("got %+v", ei)
	}
	wantValue(t, evalOK(t, s, "f"), transport.Ref("function", "<function f>"))
	wantValue(t, evalOK(t, s, "5"), transport.Int(5))
	if names := s.Globals(); strings.Join(names, ",") != "_,f" {
		t.Errorf("Globals = %v (Extra values are predeclared)", names)
	}
}

func TestCyclesAndDepth(t *testing.T) {
	s := New(Options{MaxDepth: 10})
	v := evalOK(t, s, "l = [1]\nl.append(l)\nl")
	wantValue(t, v, transport.List(transport.Int(1), transport.Ref("list", "[...]")))
	v = evalOK(t, s, "d = {}\nd['self'] = d\nd")
	wantValue(t, v, transport.Dict(transport.String("self"), transport.Ref("dict", "{...}")))
	// A list inside a tuple inside the list.
	v = evalOK(t, s, "m = []\nm.append((m,))\nm")
	wantValue(t, v, transport.List(transport.Tuple(transport.Ref("list", "[...]"))))
	// The same list twice (not a cycle) is copied twice.
	v = evalOK(t, s, "p = [1]\n[p, p]")
	wantValue(t, v, transport.List(transport.List(transport.Int(1)), transport.List(transport.Int(1))))

	v = evalOK(t, s, "deep = []\ncur = deep\nfor i in range(50):\n    nxt = []\n    cur.append(nxt)\n    cur = nxt\ndeep")
	depth := 0
	for v.Kind == transport.KindList {
		depth++
		v = v.Items[0]
	}
	if depth != 10 || v.Kind != transport.KindRef || v.Str != "list" {
		t.Errorf("depth %d, leaf %+v", depth, v)
	}
}

func TestResultLimit(t *testing.T) {
	s := New(Options{MaxResult: 1 << 20})
	ei := evalErr(t, s, "big = ['x' * 1000] * 5000\nbig")
	if ei.Kind != transport.KindLimit || !strings.Contains(ei.Msg, "1 MiB cap") {
		t.Fatalf("got %+v", ei)
	}
	// The value is still bound, and a part of it travels.
	wantValue(t, evalOK(t, s, "len(big)"), transport.Int(5000))
	if _, ei := s.Get("big"); ei == nil || ei.Kind != transport.KindLimit {
		t.Errorf("Get(big) = %+v", ei)
	}
	// The default cap.
	s = New(Options{})
	ei = evalErr(t, s, "'x' * (33 << 20)")
	if ei.Kind != transport.KindLimit || !strings.Contains(ei.Msg, "result is larger than the 32 MiB cap") {
		t.Fatalf("got %+v", ei)
	}
}

func TestPrintStreamsAndTruncates(t *testing.T) {
	s := New(Options{MaxOutput: 100})
	var mu sync.Mutex
	var got strings.Builder
	out := func(text string) { mu.Lock(); got.WriteString(text); mu.Unlock() }
	if _, ei := s.Eval(context.Background(), "for i in range(100):\n    print('line', i)", "", out); ei != nil {
		t.Fatal(ei.Msg)
	}
	text := got.String()
	if !strings.HasPrefix(text, "line 0\nline 1\n") || strings.Count(text, "[output truncated: over the 100 bytes per-chunk cap]") != 1 {
		t.Errorf("output:\n%s", text)
	}
	if n := len(text) - len("[output truncated: over the 100 bytes per-chunk cap]\n") - 1; n > 100 {
		t.Errorf("%d bytes of output passed a 100-byte cap", n)
	}
	// The cap is per chunk.
	got.Reset()
	s.Eval(context.Background(), "print('again')", "", out)
	if got.String() != "again\n" {
		t.Errorf("second chunk output %q", got.String())
	}
	// The default cap's notice.
	s = New(Options{})
	got.Reset()
	s.Eval(context.Background(), "print('y' * (2 << 20))", "", out)
	if !strings.HasSuffix(got.String(), "[output truncated: over the 1 MiB per-chunk cap]\n") {
		t.Errorf("default notice missing")
	}
}

func TestPrintIsLive(t *testing.T) {
	s := New(Options{})
	var returned atomic.Bool
	seen := make(chan bool, 1)
	_, ei := s.Eval(context.Background(), "print('hello')\ntime.sleep(0.05)\n1", "", func(text string) {
		if text == "hello\n" {
			seen <- !returned.Load()
		}
	})
	returned.Store(true)
	if ei != nil {
		t.Fatal(ei.Msg)
	}
	if !<-seen {
		t.Error("print output arrived after Eval returned")
	}
}

func TestSandbox(t *testing.T) {
	s := New(Options{Sandbox: true})
	ei := evalErr(t, s, "os.getcwd()")
	if ei.Kind != transport.KindResolve || !strings.Contains(ei.Msg, "undefined: os") {
		t.Fatalf("got %+v", ei)
	}
	wantValue(t, evalOK(t, s, "sum = 0\nfor i in range(4):\n    sum += i\nsum"), transport.Int(6))
}

func TestOSModule(t *testing.T) {
	s := New(Options{})
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	evalOK(t, s, fmt.Sprintf("p = %q\nos.write_file(p, 'hello')", p))
	wantValue(t, evalOK(t, s, "os.read_file(p)"), transport.String("hello"))
	wantValue(t, evalOK(t, s, "os.exists(p)"), transport.Bool(true))
	wantValue(t, evalOK(t, s, fmt.Sprintf("os.listdir(%q)", dir)), transport.List(transport.String("f.txt")))
	evalOK(t, s, "os.remove(p)")
	wantValue(t, evalOK(t, s, "os.exists(p)"), transport.Bool(false))
	ei := evalErr(t, s, "os.read_file(p)")
	if !strings.Contains(ei.Msg, "os.read_file:") {
		t.Errorf("msg %q", ei.Msg)
	}
	wantValue(t, evalOK(t, s, "os.getenv('RSHELL_SURELY_UNSET', 'dflt')"), transport.String("dflt"))
	wantValue(t, evalOK(t, s, "type(os.environ())"), transport.String("dict"))
	wantValue(t, evalOK(t, s, "os.getpid() == sys.pid"), transport.Bool(true))
	if runtime.GOOS == "windows" {
		return
	}
	r := evalOK(t, s, "os.run(['sh', '-c', 'echo out; echo err >&2; exit 3'])")
	wantValue(t, r, transport.Struct("run_result",
		transport.String("code"), transport.Int(3),
		transport.String("stderr"), transport.String("err\n"),
		transport.String("stdout"), transport.String("out\n")))
	ei = evalErr(t, s, "os.run(['sleep', '5'], timeout=0.05)")
	if !strings.Contains(ei.Msg, "timed out") {
		t.Errorf("msg %q", ei.Msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := startChunk(t, s, ctx, "print('started')\nos.run(['sleep', '50'])")
	t0 := time.Now()
	cancel()
	ei = <-done
	t.Logf("os.run stopped %v after cancel", time.Since(t0))
	if ei == nil || ei.Kind != transport.KindCancelled {
		t.Errorf("got %+v", ei)
	}
}

func TestNamesCompleteGlobals(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "zeta = 1\nalpha = 'a' * 1000\nbig = {i: i for i in range(100000)}\npoint = struct(x=1, y=2)")
	names := s.Names()
	var got []string
	for _, n := range names {
		got = append(got, n.Name+":"+n.Type)
		if len(n.Repr) > reprLimit+len("…") {
			t.Errorf("%s repr is %d bytes", n.Name, len(n.Repr))
		}
	}
	if strings.Join(got, " ") != "alpha:string big:dict point:struct zeta:int" {
		t.Errorf("Names = %v", got)
	}
	if names[1].Repr[:10] != "{0: 0, 1: " || !strings.HasSuffix(names[1].Repr, "…") {
		t.Errorf("big repr %q", names[1].Repr)
	}
	if names[2].Repr != "struct(x = 1, y = 2)" {
		t.Errorf("point repr %q", names[2].Repr)
	}
	if g := s.Globals(); strings.Join(g, ",") != "alpha,big,point,zeta" {
		t.Errorf("Globals = %v", g)
	}
	// Rebinding a module makes it a user global.
	evalOK(t, s, "math = 3")
	if g := s.Globals(); strings.Join(g, ",") != "alpha,big,math,point,zeta" {
		t.Errorf("Globals = %v", g)
	}

	check := func(prefix, want string) {
		t.Helper()
		if got := strings.Join(s.Complete(prefix), ","); got != want {
			t.Errorf("Complete(%q) = %s, want %s", prefix, got, want)
		}
	}
	check("os.ge", "os.getcwd,os.getenv,os.getpid")
	check("po", "point")
	check("point.", "point.x,point.y")
	check("le", "len")
	check("pr", "print")
	check("ze", "zeta")
	check("nothing.x", "")
	check("alpha.up", "alpha.upper")

	s.Reset()
	if g := s.Globals(); len(g) != 0 {
		t.Errorf("after Reset, Globals = %v", g)
	}
	check("os.getc", "os.getcwd")
	wantValue(t, evalOK(t, s, "math.floor(1.5)"), transport.Int(1))
}

func TestNamesDoNotBlockBehindChunk(t *testing.T) {
	s := New(Options{})
	evalOK(t, s, "counter = 0\nitems = []")
	s.Names() // between chunks: refreshes the snapshot answered from below
	ctx, cancel := context.WithCancel(context.Background())
	// "started" is printed once mine is bound, so the chunk is known to
	// have bound it whenever it is cancelled.
	done := startChunk(t, s, ctx, "said = False\nwhile True:\n    counter += 1\n    items.append(counter)\n    if len(items) > 1000:\n        items.clear()\n    mine = counter\n    if not said:\n        print('started')\n        said = True\n")
	for i := 0; i < 200; i++ {
		names := s.Names()
		if len(names) < 2 {
			t.Fatalf("Names during a chunk = %v", names)
		}
		if c := s.Complete("cou"); len(c) != 1 || c[0] != "counter" {
			t.Fatalf("Complete(cou) during a chunk = %v", c)
		}
		if c := s.Complete("os.getp"); len(c) != 1 {
			t.Fatalf("Complete(os.getp) during a chunk = %v", c)
		}
		if c := s.Complete("items.app"); len(c) != 1 {
			t.Fatalf("Complete(items.app) during a chunk = %v", c)
		}
	}
	cancel()
	if ei := <-done; ei == nil || ei.Kind != transport.KindCancelled {
		t.Fatalf("got %+v", ei)
	}
	if c := s.Complete("mi"); strings.Join(c, ",") != "min,mine" {
		t.Errorf("after the chunk, Complete(mi) = %v", c)
	}
}

func TestPut(t *testing.T) {
	s := New(Options{})
	v := transport.Dict(transport.String("k"), transport.List(transport.Int(1), transport.Float(math.Copysign(0, -1))),
		transport.Tuple(transport.Int(1), transport.String("t")), transport.BigInt(new(big.Int).Lsh(big.NewInt(1), 100)))
	if ei := s.Put("got", v); ei != nil {
		t.Fatal(ei.Msg)
	}
	wantValue(t, evalOK(t, s, "got"), v)
	wantValue(t, evalOK(t, s, "got['k'].append(2)\nlen(got['k'])"), transport.Int(3))
	for _, bad := range []string{"", "1x", "a b", "None", "for"} {
		if ei := s.Put(bad, transport.Int(1)); ei == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
	if ei := s.Put("dup", transport.Dict(transport.Int(1), transport.None(), transport.Int(1), transport.None())); ei == nil {
		t.Error("Put of a dict with a duplicate key accepted")
	}
	// A ref travels back as itself.
	if ei := s.Put("r", transport.List(transport.Ref("function", "<function f>"))); ei != nil {
		t.Fatal(ei.Msg)
	}
	wantValue(t, evalOK(t, s, "r"), transport.List(transport.Ref("function", "<function f>")))
	wantValue(t, evalOK(t, s, "str(r[0]) + ' ' + type(r[0])"), transport.String("<function f> ref"))
}

func TestScalarsRoundTrip(t *testing.T) {
	s := New(Options{})
	v := evalOK(t, s, `(float("nan"), -0.0, float("inf"), -float("inf"), 1 << 80, -(1 << 80), b"\xff", "\u00ff", set([1, 2]), True, None)`)
	if v.Kind != transport.KindTuple || len(v.Items) != 11 {
		t.Fatalf("got %+v", v)
	}
	if v.Items[1].Float() != 0 || !math.Signbit(v.Items[1].Float()) {
		t.Error("-0.0 lost its sign")
	}
	if v.Items[4].Big == nil || v.Items[4].Big.Cmp(new(big.Int).Lsh(big.NewInt(1), 80)) != 0 {
		t.Errorf("big int %+v", v.Items[4])
	}
	if v.Items[6].Kind != transport.KindBytes || v.Items[6].Str != "\xff" {
		t.Errorf("bytes %+v", v.Items[6])
	}
	// A string that is not valid UTF-8 (a Starlark literal cannot make one).
	v.Items[7] = transport.String("a\xffb")
	if ei := s.Put("back", v); ei != nil {
		t.Fatal(ei.Msg)
	}
	wantValue(t, evalOK(t, s, "back"), v)
}

// badRepr is a value whose String panics.
type badRepr struct{}

func (badRepr) String() string        { panic("no repr") }
func (badRepr) Type() string          { return "bad" }
func (badRepr) Freeze()               {}
func (badRepr) Truth() starlark.Bool  { return true }
func (badRepr) Hash() (uint32, error) { return 0, nil }

func TestPanicOutsideInterpreter(t *testing.T) {
	bad := starlark.NewBuiltin("bad", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return badRepr{}, nil
	})
	s := New(Options{Extra: starlark.StringDict{"bad": bad}})
	wantValue(t, evalOK(t, s, "bad()"), transport.Ref("bad", "<bad (repr failed)>"))
	if n := s.Names(); len(n) != 1 || n[0].Repr != "<bad (repr failed)>" {
		t.Errorf("Names = %+v", n)
	}
	wantValue(t, evalOK(t, s, "6"), transport.Int(6))
}

// TestRunawayRecursionStopsEarly: recursion is stopped at MaxCallDepth
// calls with a clear error (Starlark's own limit of 100,000 costs ~140 MB
// of goroutine stack), and deep-but-bounded recursion still works.
func TestRunawayRecursionStopsEarly(t *testing.T) {
	s := New(Options{})
	ei := evalErr(t, s, "def f(n):\n    return f(n + 1)\nf(0)")
	if ei.Kind != transport.KindRuntime || !strings.Contains(ei.Msg, "stack overflow") || !strings.Contains(ei.Msg, "over the limit of 1000") {
		t.Fatalf("runaway recursion: %s: %s", ei.Kind, ei.Msg)
	}
	// It is stopped at the limit, not a tick's worth of calls past it
	// (it went to ~1,600 calls, growing its stack to 4 MiB).
	var depth int
	if _, err := fmt.Sscanf(ei.Msg, "stack overflow: %d calls deep", &depth); err != nil || depth > MaxCallDepth+2 {
		t.Fatalf("stopped at depth %d (%v), want at most %d: %s", depth, err, MaxCallDepth+2, ei.Msg)
	}
	// The traceback shows a few frames and counts the rest, as CPython does.
	repeated := 0
	for _, f := range ei.Frames {
		repeated += f.Repeat
	}
	if len(ei.Frames) > 6 || repeated < MaxCallDepth-10 {
		t.Fatalf("traceback of %d frames with %d repeats left out, want a few frames and ~%d repeats", len(ei.Frames), repeated, MaxCallDepth)
	}
	if tb := (&transport.RemoteError{Info: *ei}).Traceback(); !strings.Contains(tb, "[previous frame repeated") {
		t.Fatalf("traceback does not say what it left out:\n%s", tb)
	}
	if v := evalOK(t, s, "def g(n):\n    return 0 if n == 0 else 1 + g(n - 1)\ng(990)"); v.Int != 990 {
		t.Fatalf("g(990) = %v", v)
	}
	if v := evalOK(t, s, "1 + 1"); v.Int != 2 {
		t.Fatalf("after: %v", v)
	}
}

// A session keeps the source of a chunk only if the chunk defined a
// function (its tracebacks and saved records need it): a session that
// evaluates an expression every second for a month does not grow.
func TestOnlyChunksThatDefineFunctionsKeepTheirSource(t *testing.T) {
	s := New(Options{})
	for range 100 {
		evalOK(t, s, "1 + 1")
	}
	evalOK(t, s, "x = [i * 2 for i in range(3)]")
	if n := len(s.sources); n != 0 {
		t.Fatalf("%d chunk sources kept, want none", n)
	}
	evalOK(t, s, "def half(n):\n    return 1 // n\nsq = lambda n: n * n")
	if n := len(s.sources); n != 1 {
		t.Fatalf("%d chunk sources kept after a def, want 1", n)
	}
	// A traceback through the function shows its line, and the running
	// chunk's own line.
	ei := evalErr(t, s, "y = 1\nhalf(0)")
	var lines []string
	for _, f := range ei.Frames {
		lines = append(lines, f.Source)
	}
	if len(lines) != 2 || lines[0] != "half(0)" || lines[1] != "return 1 // n" {
		t.Fatalf("traceback lines %q, want the chunk's and the function's", lines)
	}
	if n := len(s.sources); n != 1 {
		t.Fatalf("%d chunk sources kept after a failed chunk without a def, want 1", n)
	}
}
