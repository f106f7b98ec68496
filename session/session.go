package session

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/rshell/rshell/transport"
)

// Version is the rshell version reported by sys.version.
const Version = "0.1.0"

// longChunkSteps is how many steps make a chunk "long" (see WithLongChunk).
const longChunkSteps = 50_000

// tickSteps is how often (in Starlark steps, ~0.1 ms) a running chunk
// checks its limits and, once long, yields its thread to other goroutines.
const tickSteps = 4096

// MaxCallDepth bounds nested calls, as CPython's default recursion limit
// does. Starlark's own bound is 100,000, whose ~140 MB of goroutine stack
// takes the runtime hundreds of milliseconds of copying to grow; 10,000
// still stalled other sessions for tens of milliseconds each time a
// runaway recursion grew its stack (the copy cannot be preempted), and
// its traceback was 100 KiB. The depth is checked at each tick, and the
// next tick comes no later than one step per call left below the limit
// (nextTick), so a chunk is stopped at most one call past it.
const MaxCallDepth = 1_000

// tick runs every tickSteps steps of a chunk: it enforces the step limit
// and the call depth, tells the server when the chunk turns long, and takes
// the chunk's turn on the CPU (WithCPU). Without a CPU share, on a machine
// with one CPU, a long chunk yields at every tick, so that a long chunk
// delays other sessions' short chunks (and this chunk's own cancel) by a
// tick rather than by the runtime's 10 ms preemption slice. With more
// CPUs it does not: a yielding chunk goes back on the global run queue
// ahead of the network poller, and a cancel then waited up to a few ticks
// (p90 2.3 ms, 3.1 ms worst, against 0.55 and 0.65 ms without).
func (s *Session) tick(t *starlark.Thread) {
	if t.Steps >= s.stepLimit {
		s.stepsOver = true
		t.Cancel("step limit exceeded")
		return
	}
	if d := t.CallStackDepth(); d > MaxCallDepth {
		s.depthOver = d
		t.Cancel("stack overflow")
		return
	}
	long := t.Steps >= longChunkSteps
	if long {
		s.goingLong()
	}
	ctx := chunkContext(t)
	switch {
	case s.cpu != nil:
		s.cpu.Run(ctx)
	case long && (runtime.NumCPU() == 1 || runtime.GOMAXPROCS(0) == 1):
		runtime.Gosched()
	}
	if ctx.Err() != nil {
		// Stop now, not when the context's AfterFunc gets to run.
		t.Cancel("cancelled")
		return
	}
	t.SetMaxExecutionSteps(s.nextTick(t.Steps, t.CallStackDepth()))
}

// nextTick is the step count of the next tick: tickSteps on, but sooner
// as the call depth nears MaxCallDepth. A call takes at least one step,
// so a chunk d calls deep cannot pass the limit within MaxCallDepth-d
// steps. A runaway recursion used to run ~4,096 steps past the limit
// before a tick saw it, 1,600 calls deep, and grew its goroutine stack to
// 4 MiB instead of 2 (a copy the runtime cannot preempt).
func (s *Session) nextTick(steps uint64, depth int) uint64 {
	n := uint64(tickSteps)
	if left := MaxCallDepth - depth; left < tickSteps {
		n = uint64(max(left, 1))
	}
	return min(steps+n, s.stepLimit)
}

type longKey struct{}

// sessionLocal is the thread-local key of the session a thread belongs
// to, for built-ins that are about to block or wait on I/O.
const sessionLocal = "rshell.session"

// CPU shares the processor among chunks that run long (see WithCPU).
type CPU interface {
	// Run is called on the chunk's goroutine before it runs and at each
	// tick; it returns when the chunk may run on, or when ctx is done.
	Run(ctx context.Context)
	// Release is called when the chunk is about to block, and when it ends.
	Release()
}

// cpuWaiting is a CPU that can say what a chunk stopped before it ran was
// waiting for, when that was not a turn on the CPU (a pause of its
// session's; "" otherwise).
type cpuWaiting interface{ Waiting() string }

type cpuKey struct{}

// WithCPU returns a context for Eval under which a long chunk takes its
// turns on the CPU from c, instead of yielding at each tick on a one-CPU
// machine.
func WithCPU(ctx context.Context, c CPU) context.Context {
	return context.WithValue(ctx, cpuKey{}, c)
}

// blocking is called by a chunk about to block: it is long, and gives up
// its turn on the CPU.
func (s *Session) blocking() {
	s.goingLong()
	s.releaseCPU()
}

// releaseCPU gives up the chunk's turn on the CPU before I/O that may
// wait (printing to a client that does not read, a file on a hung
// mount): a waiting chunk must not keep the other sessions' chunks from
// running. The next tick takes a turn again.
func (s *Session) releaseCPU() {
	if s.cpu != nil {
		s.cpu.Release()
	}
}

// cpuStepper is a CPU that can give a chunk's turn straight to the next
// waiter before work the chunk cannot break into turns.
type cpuStepper interface{ StepAside(ctx context.Context) }

// beforeBigAlloc is the thread's hook before the interpreter allocates a
// big list or tuple, which the Go runtime zeroes in one piece: the chunk
// steps aside (see cpuStepper), or releases its turn. The interpreter's
// tick after the allocation takes a turn again.
func (s *Session) beforeBigAlloc(t *starlark.Thread) {
	if st, ok := s.cpu.(cpuStepper); ok {
		st.StepAside(chunkContext(t))
		return
	}
	s.releaseCPU()
}

// beforeIO gives up the CPU turn of the chunk running on thread (see
// releaseCPU).
func beforeIO(thread *starlark.Thread) {
	if s, ok := thread.Local(sessionLocal).(*Session); ok {
		s.releaseCPU()
	}
}

// aboutToBlock tells the chunk running on thread that it will block.
func aboutToBlock(thread *starlark.Thread) {
	if s, ok := thread.Local(sessionLocal).(*Session); ok {
		s.blocking()
	}
}

// WithLongChunk returns a context for Eval under which f is called, once,
// on the evaluating goroutine, when the chunk turns out not to be short:
// it ran longChunkSteps Starlark steps (about a millisecond), or is about
// to block (sleep, a subprocess, waiting behind another chunk of the
// session). The server uses it to start reading cancels only for chunks
// that need it.
func WithLongChunk(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, longKey{}, f)
}

// goingLong calls the chunk's long-chunk hook, once. Needs s.mu (or the
// chunk's goroutine).
func (s *Session) goingLong() {
	if s.longHook == nil {
		return
	}
	f := s.longHook
	s.longHook = nil
	f()
}

// Defaults for the zero values of Options.
const (
	DefaultMaxResult = 32 << 20
	DefaultMaxDepth  = 100
	DefaultMaxOutput = 1 << 20
)

// Options configure a session. The zero value is a full-power session with
// the default caps.
type Options struct {
	Sandbox     bool                // no os module, no file or process access: pure computation
	MaxSteps    uint64              // Starlark execution steps per chunk; 0 = unlimited
	MaxEvalTime time.Duration       // wall time per chunk; 0 = off
	MaxResult   int                 // bytes of encoded result; 0 = 32 MiB default
	MaxDepth    int                 // value nesting depth before a ref leaf; 0 = 100
	MaxOutput   int                 // print() bytes per chunk, then truncated with one notice; 0 = 1 MiB
	Extra       starlark.StringDict // extra predeclared names
}

// FileOptions returns the Starlark dialect of rshell: set, while, top-level
// control flow, global reassignment and recursion are all allowed.
func FileOptions() *syntax.FileOptions {
	return &syntax.FileOptions{
		Set:             true,
		While:           true,
		TopLevelControl: true,
		GlobalReassign:  true,
		Recursion:       true,
	}
}

// ctxKey is the thread-local key under which a chunk's context is stored, so
// that blocking built-ins (time.sleep, os.run) stop when the chunk is cancelled.
const ctxKey = "rshell.ctx"

// chunkContext returns the context of the chunk running on thread.
func chunkContext(thread *starlark.Thread) context.Context {
	if ctx, ok := thread.Local(ctxKey).(context.Context); ok && ctx != nil {
		return ctx
	}
	return context.Background()
}

// StopCause, as the cause of a chunk's cancelled context (see
// context.WithCancelCause), says how the stop is reported: with its Kind
// (transport.KindDeadline, KindLimit, KindShutdown...) and what happened.
// Without one, a cancel reports "cancelled" and a context deadline
// "deadline exceeded after D".
type StopCause struct {
	Kind string
	What string // e.g. "deadline exceeded after 2s"
}

func (c *StopCause) Error() string { return c.What }

// Session is one namespace with one Starlark thread. Its methods are safe
// for concurrent use; chunks run one at a time.
type Session struct {
	opts Options

	mu        chunkLock
	thread    *starlark.Thread
	globals   starlark.StringDict
	builtins  starlark.StringDict   // predeclared values, to tell user globals apart
	sources   map[string]string     // file name -> source of every named file run and chunk that defined a function
	exprs     map[string]*exprEntry // compiled expression chunks (exprcache.go)
	curFile   string                // the running chunk's file name and source (sourceOf)
	curSrc    string
	fileOrder map[string]int // file name -> the chunk count when it first ran
	chunks    int

	// Per-chunk state, guarded by mu.
	out       func(string)
	outN      int
	outCut    bool
	stepsOver bool
	depthOver int // the call depth that stopped the chunk, or 0

	stepLimit uint64 // this chunk's step limit
	longHook  func() // the chunk's WithLongChunk hook, until called
	cpu       CPU    // the chunk's turns on the CPU, or nil

	snapMu    sync.Mutex
	snap      snapshot
	snapDirty bool // guarded by mu: the snapshot is older than the namespace

	builtinAttrs map[string][]string // guarded by mu: attribute names of the predeclared values

	dur durability // guarded by mu
}

// New returns a fresh session.
func New(opts Options) *Session {
	if opts.MaxResult <= 0 {
		opts.MaxResult = DefaultMaxResult
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	s := &Session{opts: opts, mu: newChunkLock(), sources: make(map[string]string), fileOrder: make(map[string]int)}
	s.thread = s.newThread()
	s.resetGlobals()
	s.snapDirty = true
	return s
}

func (s *Session) newThread() *starlark.Thread {
	th := &starlark.Thread{Name: "rshell"}
	th.Print = s.print
	th.OnMaxSteps = s.tick
	th.BeforeBigAlloc = s.beforeBigAlloc
	th.SetLocal(sessionLocal, s)
	return th
}

func (s *Session) resetGlobals() {
	s.builtins = predeclared(s.opts)
	s.builtinAttrs = nil
	s.globals = make(starlark.StringDict, len(s.builtins)+16)
	s.exprs = nil // compiled against the old globals
	for k, v := range s.builtins {
		s.globals[k] = v
	}
}

// print is the thread's print function: it streams to the chunk's out
// callback and enforces the per-chunk output cap.
func (s *Session) print(_ *starlark.Thread, msg string) {
	if s.outCut {
		return
	}
	line := msg + "\n"
	s.releaseCPU()
	if room := s.opts.MaxOutput - s.outN; len(line) > room {
		cut := trimPartialRune(line[:max(room, 0)])
		s.outCut = true
		s.outN = s.opts.MaxOutput
		if s.out != nil {
			if cut != "" {
				s.out(cut + "\n")
			}
			s.out(fmt.Sprintf("[output truncated: over the %s per-chunk cap]\n", formatSize(s.opts.MaxOutput)))
		}
		return
	}
	s.outN += len(line)
	if s.out != nil {
		s.out(line)
	}
}

// trimPartialRune drops a rune cut in half at the end of s.
func trimPartialRune(s string) string {
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// ChunkCount is the number of chunks evaluated so far (Reset keeps it).
func (s *Session) ChunkCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chunks
}

// cancelGuard cancels the thread when the chunk's context is done, but never
// after the chunk has finished (so a late AfterFunc cannot hit the next chunk).
type cancelGuard struct {
	mu     sync.Mutex
	done   bool
	thread *starlark.Thread
}

func (g *cancelGuard) cancel() {
	g.mu.Lock()
	if !g.done {
		g.thread.Cancel("cancelled")
	}
	g.mu.Unlock()
}

func (g *cancelGuard) finish() {
	g.mu.Lock()
	g.done = true
	g.mu.Unlock()
}

// panicError is a panic recovered during evaluation.
type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("internal error in built-in: %v", p.v) }

// Eval runs one chunk in the namespace and returns the encoding of its
// result (None when the chunk has no trailing expression) or an error.
// file "" names the chunk "<in[N]>". out receives print() output as it
// happens, on the calling goroutine.
func (s *Session) Eval(ctx context.Context, src, file string, out func(string)) (value []byte, ei *transport.ErrorInfo) {
	waitStart := time.Now()
	hook, _ := ctx.Value(longKey{}).(func())
	if !s.mu.TryLock() {
		// Waiting behind another chunk is not short.
		if hook != nil {
			hook()
			hook = nil
		}
		if err := s.mu.LockCtx(ctx); err != nil {
			// Still waiting behind another chunk: nothing of this one ran.
			return nil, s.stopError(ctx, waitStart, nil, "another chunk of this session to finish")
		}
	}
	// Unlocked last: the next chunk (another client's, in a shared
	// namespace) sets its own hook and CPU turn once it has the lock, and
	// this one's must be cleared before that, not after (a race: the
	// chunk that had waited lost its hook, and its CPU turn was released
	// by the chunk before it).
	defer s.mu.Unlock()
	s.longHook = hook
	s.cpu, _ = ctx.Value(cpuKey{}).(CPU)
	defer func() {
		if s.cpu != nil {
			s.cpu.Release()
			s.cpu = nil
		}
		s.longHook = nil
	}()
	defer func() {
		// A panic outside the interpreter (a custom value's String, say):
		// the session must keep working all the same.
		if r := recover(); r != nil {
			s.thread = s.newThread()
			value, ei = nil, &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: panicError{r}.Error()}
		}
	}()
	s.chunks++
	named := file != ""
	if !named {
		file = fmt.Sprintf("<in[%d]>", s.chunks)
	}
	start := time.Now()
	if s.opts.MaxEvalTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, s.opts.MaxEvalTime, &StopCause{Kind: transport.KindDeadline,
			What: fmt.Sprintf("deadline exceeded after %s: the chunk ran past the server's --max-eval-time limit", roundDuration(s.opts.MaxEvalTime))})
		defer cancel()
	}
	if ctx.Err() != nil {
		return nil, s.stopError(ctx, start, nil, "")
	}
	if s.cpu != nil {
		s.cpu.Run(ctx) // wait for a turn on the CPU
		if ctx.Err() != nil {
			waiting := "a turn on the server's CPU, busy with other sessions' chunks"
			if w, ok := s.cpu.(cpuWaiting); ok && w.Waiting() != "" {
				waiting = w.Waiting()
			}
			return nil, s.stopError(ctx, start, nil, waiting)
		}
	}

	var f *syntax.File
	var compiled *exprEntry
	if !named {
		if compiled = s.cachedExpr(src); compiled != nil {
			// Its positions name the chunk it was first compiled as.
			f, file = compiled.f, compiled.file
		}
	}
	if f == nil {
		var err error
		f, err = FileOptions().Parse(file, src, 0)
		if err != nil {
			return nil, positionError(transport.KindSyntax, err, src)
		}
		if !named {
			compiled = s.compileExpr(f, file, src)
		}
	}
	s.curFile, s.curSrc = file, src
	if compiled == nil && (named || definesFunction(f)) { // a compiled expression defines none
		// Kept for the tracebacks and saved records of the functions it
		// defines; the code of any other chunk cannot run after it ends.
		// (Every chunk's source used to be kept, for the session's life.)
		s.sources[file] = src
		if _, ok := s.fileOrder[file]; !ok {
			s.fileOrder[file] = s.chunks
		}
	}
	s.touch(f)
	// The snapshot for Names and Complete is refreshed lazily, when they
	// are next called between chunks: refreshing it after every chunk
	// doubled the cost of a trivial chunk (4.8 → 9.5 µs).
	s.snapDirty = true

	th := s.thread
	th.Uncancel()
	th.Steps = 0
	s.stepLimit = math.MaxUint64
	if s.opts.MaxSteps > 0 {
		s.stepLimit = s.opts.MaxSteps
	}
	th.SetMaxExecutionSteps(s.nextTick(0, 0))
	th.SetLocal(ctxKey, ctx)
	s.out, s.outN, s.outCut, s.stepsOver, s.depthOver = out, 0, false, false, 0
	defer func() {
		s.out = nil
		s.curFile, s.curSrc = "", ""
		th.SetLocal(ctxKey, nil)
	}()

	guard := &cancelGuard{thread: th}
	stop := context.AfterFunc(ctx, guard.cancel)
	v, err := s.run(f, file, src, compiled)
	stop()
	guard.finish()

	if err != nil {
		var pe panicError
		if errors.As(err, &pe) {
			// The interpreter pops its frames on panic, but start the next
			// chunk on a fresh thread all the same.
			s.thread = s.newThread()
			return nil, &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: pe.Error()}
		}
		return nil, s.evalError(ctx, start, err, src)
	}
	if v != starlark.None {
		s.globals["_"] = v
	}
	return s.encodeResult(v)
}

// sourceOf is the source of file: the running chunk's, or one kept.
func (s *Session) sourceOf(file string) string {
	if file == s.curFile {
		return s.curSrc
	}
	return s.sources[file]
}

// definesFunction reports whether f has a def or a lambda: code that can
// run after the chunk ends.
func definesFunction(f *syntax.File) bool {
	found := false
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n.(type) {
		case *syntax.DefStmt, *syntax.LambdaExpr:
			found = true
		}
		return !found
	})
	return found
}

// run executes a parsed chunk, or calls its compiled expression (when not
// nil); a trailing expression statement is evaluated separately and its
// value returned.
func (s *Session) run(f *syntax.File, file, src string, compiled *exprEntry) (v starlark.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, panicError{r}
		}
	}()
	if compiled != nil {
		return starlark.Call(s.thread, compiled.fn, nil, nil)
	}
	n := len(f.Stmts)
	if n == 0 {
		return starlark.None, nil
	}
	last, ok := f.Stmts[n-1].(*syntax.ExprStmt)
	if !ok {
		return starlark.None, starlark.ExecREPLChunk(f, s.thread, s.globals)
	}
	if n > 1 {
		// Resolve the whole chunk first, so that an undefined name in the
		// last expression stops the chunk before any of it runs.
		check, err := FileOptions().Parse(file, src, 0)
		if err != nil {
			return nil, err
		}
		if err := resolve.REPLChunk(check, s.globals.Has, starlark.StringDict(nil).Has, starlark.Universe.Has); err != nil {
			return nil, err
		}
		f.Stmts = f.Stmts[:n-1]
		if err := starlark.ExecREPLChunk(f, s.thread, s.globals); err != nil {
			return nil, err
		}
	}
	return starlark.EvalExprOptions(f.Options, s.thread, last.X, s.globals)
}

func (s *Session) encodeResult(v starlark.Value) ([]byte, *transport.ErrorInfo) {
	enc := transport.NewEncoder(nil)
	e := encoder{enc: enc, maxDepth: s.opts.MaxDepth, limit: s.opts.MaxResult}
	e.value(v, 0)
	if e.over {
		return nil, &transport.ErrorInfo{
			Kind: transport.KindLimit,
			Msg: fmt.Sprintf("result is larger than the %s cap; bind it to a name and fetch part of it, or raise --max-result",
				formatSize(s.opts.MaxResult)),
		}
	}
	return enc.Bytes(), nil
}

// stopError describes a chunk stopped by its context; waiting, when not "",
// says what it was waiting for when stopped before it ran.
func (s *Session) stopError(ctx context.Context, start time.Time, frames []transport.FrameInfo, waiting string) *transport.ErrorInfo {
	kind, what := transport.KindCancelled, "cancelled"
	var sc *StopCause
	switch {
	case errors.As(context.Cause(ctx), &sc):
		kind, what = sc.Kind, sc.What
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		d := time.Since(start)
		if dl, ok := ctx.Deadline(); ok && dl.After(start) {
			d = dl.Sub(start)
		}
		kind, what = transport.KindDeadline, fmt.Sprintf("deadline exceeded after %s", roundDuration(d))
	}
	msg := what + " (the remote work was stopped)"
	if waiting != "" {
		msg = what + " while waiting for " + waiting + " (this chunk never ran)"
	}
	return &transport.ErrorInfo{Kind: kind, Msg: msg, Frames: frames}
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d
}

// evalError converts an error of ExecREPLChunk or EvalExprOptions.
func (s *Session) evalError(ctx context.Context, start time.Time, err error, src string) *transport.ErrorInfo {
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		ei := positionError(transport.KindResolve, rl[0], src)
		if len(rl) > 1 {
			ei.Msg += fmt.Sprintf(" (and %d more)", len(rl)-1)
		}
		return ei
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return positionError(transport.KindSyntax, se, src)
	}
	var ee *starlark.EvalError
	var frames []transport.FrameInfo
	msg := err.Error()
	if errors.As(err, &ee) {
		frames = s.frames(ee.CallStack)
		msg = ee.Msg
	}
	switch {
	case s.depthOver > 0:
		return &transport.ErrorInfo{
			Kind:   transport.KindRuntime,
			Msg:    fmt.Sprintf("stack overflow: %d calls deep, over the limit of %d (runaway recursion?)", s.depthOver, MaxCallDepth),
			Frames: frames,
		}
	case s.stepsOver:
		return &transport.ErrorInfo{
			Kind:   transport.KindLimit,
			Msg:    fmt.Sprintf("step limit exceeded: the chunk ran more than %d Starlark steps (the server's --max-steps limit)", s.opts.MaxSteps),
			Frames: frames,
		}
	case ctx.Err() != nil:
		return s.stopError(ctx, start, frames, "")
	}
	return &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: msg, Frames: frames}
}

// frames converts a Starlark call stack (outermost first), attaching the
// kept source line of each frame.
// repeatShown is how many identical frames in a row a traceback shows; the
// rest are counted in the last one's Repeat. A runaway recursion's
// traceback was MaxCallDepth frames: 100 KiB to format, log and send.
const repeatShown = 3

func (s *Session) frames(stack starlark.CallStack) []transport.FrameInfo {
	frames := make([]transport.FrameInfo, 0, min(len(stack), 64))
	run := 0 // frames so far identical to the one before
	for i, fr := range stack {
		if i > 0 && fr == stack[i-1] {
			if run++; run >= repeatShown {
				frames[len(frames)-1].Repeat++
				continue
			}
		} else {
			run = 0
		}
		name := fr.Name
		if name == "<expr>" {
			name = "<toplevel>"
		}
		if !fr.Pos.IsValid() || fr.Pos.Line == 0 || fr.Pos.Filename() == "<builtin>" {
			frames = append(frames, transport.FrameInfo{Func: name})
			continue
		}
		file := fr.Pos.Filename()
		frames = append(frames, transport.FrameInfo{
			File:   file,
			Line:   int(fr.Pos.Line),
			Col:    int(fr.Pos.Col),
			Func:   name,
			Source: strings.TrimSpace(sourceLine(s.sourceOf(file), int(fr.Pos.Line))),
		})
	}
	return frames
}

// positionError converts a syntax or resolve error into an ErrorInfo.
func positionError(kind string, err error, src string) *transport.ErrorInfo {
	var pos syntax.Position
	msg := err.Error()
	switch e := err.(type) {
	case syntax.Error:
		pos, msg = e.Pos, e.Msg
	case resolve.Error:
		pos, msg = e.Pos, e.Msg
	default:
		var se syntax.Error
		if errors.As(err, &se) {
			pos, msg = se.Pos, se.Msg
		}
	}
	ei := &transport.ErrorInfo{Kind: kind, Msg: msg}
	if pos.IsValid() {
		ei.File = pos.Filename()
		ei.Line = int(pos.Line)
		ei.Col = int(pos.Col)
		ei.SrcLine = strings.TrimRight(sourceLine(src, int(pos.Line)), " \t\r")
	}
	return ei
}

// sourceLine returns line n (1-based) of src, without its newline.
func sourceLine(src string, n int) string {
	if n <= 0 {
		return ""
	}
	for i := 1; i < n; i++ {
		j := strings.IndexByte(src, '\n')
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
	if j := strings.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	return strings.TrimRight(src, "\r")
}

// formatSize renders a byte count the way limits are spoken of.
func formatSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Get returns the encoding of global name.
func (s *Session) Get(name string) ([]byte, *transport.ErrorInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.globals[name]
	if !ok || v == nil {
		return nil, &transport.ErrorInfo{Kind: transport.KindNotFound, Msg: fmt.Sprintf("name %q is not defined", name)}
	}
	return s.encodeResult(v)
}

// Put binds global name to a replicated value.
func (s *Session) Put(name string, v transport.Value) *transport.ErrorInfo {
	if !validName(name) {
		return &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: fmt.Sprintf("put: %q is not a valid global name", name)}
	}
	sv, err := ToStarlark(v)
	if err != nil {
		return &transport.ErrorInfo{Kind: transport.KindRuntime, Msg: fmt.Sprintf("put %s: %v", name, err)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.globals[name] = sv
	if s.dur.touched != nil || s.dur.hashes != nil {
		if s.dur.touched == nil {
			s.dur.touched = map[string]bool{}
		}
		s.dur.touched[name] = true
	}
	s.refreshSnapshot()
	return nil
}

// validName reports whether name is a Starlark identifier that may be bound.
func validName(name string) bool {
	switch name {
	case "", "None", "True", "False":
		return false
	}
	e, err := FileOptions().ParseExpr("<name>", name, 0)
	if err != nil {
		return false
	}
	id, ok := e.(*syntax.Ident)
	return ok && id.Name == name
}

// Reset gives the session a fresh namespace (built-in modules back); the
// chunk counter is kept so chunk names stay unique.
func (s *Session) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetGlobals()
	s.sources = make(map[string]string)
	s.fileOrder = make(map[string]int)
	s.thread = s.newThread()
	s.dur.reset = true
	s.refreshSnapshot()
}

// Globals returns the sorted names of the user's globals: everything but the
// predeclared modules and values, unless the user rebound them.
func (s *Session) Globals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userGlobals()
}
