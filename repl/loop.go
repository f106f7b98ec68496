package repl

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rshell/rshell/history"
	"github.com/rshell/rshell/transport"
)

// shell is the state of one Run: its hosts, its input and its output.
// Only the loop's goroutine touches most of it; watchers only print
// through the locked writers and mark hosts lost.
type shell struct {
	ctx     context.Context
	cfg     Config
	r       *Renderer
	widthFn func() int

	outMu     sync.Mutex
	out, errw io.Writer

	lines LineReader
	rl    *rlReader
	hist  *history.History

	hosts   []*host
	cur     *host
	timeout time.Duration

	failed      bool
	quit        bool
	interrupted bool // a script was stopped by Ctrl-C

	completer *completer
	fan       fanState               // several hosts at once (fanout.go)
	first     *transport.EvalRequest // rshell exec's chunk, sent with each host's hello (connect)
	intr      *interrupts
	closing   chan struct{}
	wg        sync.WaitGroup
}

func newShell(ctx context.Context, cfg Config) *shell {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	s := &shell{
		ctx: ctx, cfg: cfg,
		r: &Renderer{
			Color: cfg.Color, Width: cfg.Width, MaxItems: cfg.MaxItems, MaxChars: cfg.MaxChars,
			Raw: cfg.RawOutput,
		},
		out: cfg.Out, errw: cfg.Err,
		timeout: cfg.Timeout,
		closing: make(chan struct{}),
	}
	if s.r.Width <= 0 {
		s.r.Width = 80
	}
	if cfg.Interactive {
		s.errw = cfg.Out // one stream, in order, for a person
	}
	s.completer = &completer{s: s}
	s.intr = newInterrupts(cfg.Signals, cfg.Interactive)
	return s
}

func (s *shell) setOutput(out, errw io.Writer) {
	s.outMu.Lock()
	s.out, s.errw = out, errw
	s.outMu.Unlock()
}

// print writes text to the output in one Write: readline redraws its
// prompt after each write, so a line must never be split.
func (s *shell) print(text string) {
	if text == "" {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	io.WriteString(s.out, text)
}

// printErr writes to the error stream (the output when interactive).
func (s *shell) printErr(text string) {
	if text == "" {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	io.WriteString(s.errw, text)
}

// notify prints an asynchronous message (host lost...) above the prompt.
func (s *shell) notify(text string) {
	if s.cfg.Interactive {
		s.print(text)
	} else {
		s.printErr(text)
	}
}

// close closes every host and waits for the watchers.
func (s *shell) close() {
	close(s.closing)
	s.intr.stop()
	for _, h := range s.hosts {
		s.closeHost(h)
	}
	s.wg.Wait()
	if s.hist != nil {
		s.hist.Close()
	}
}

func (s *shell) prompt() string {
	if s.fan.target != nil {
		return s.fan.target.label + "> "
	}
	name := "(no host)"
	if s.cur != nil {
		name = s.cur.name
	}
	return name + "> "
}

// contPrompt is the continuation prompt, its dots aligned under the end of
// the host name.
func (s *shell) contPrompt() string { return contFor(s.prompt()) }

func contFor(prompt string) string {
	return strings.Repeat(" ", max(len([]rune(prompt))-4, 0)) + "... "
}

// loop reads and runs chunks and commands until the input ends.
func (s *shell) loop() int {
	var ch Chunker
	var raw []string // the chunk's lines as typed, for history
	for !s.quit {
		if s.ctx.Err() != nil {
			break
		}
		prompt := s.prompt()
		if ch.Pending() {
			prompt = s.contPrompt()
		}
		if s.widthFn != nil {
			w := s.widthFn()
			s.outMu.Lock() // async notices render under outMu
			s.r.Width = w
			s.outMu.Unlock()
		}
		line, err := s.lines.ReadLine(prompt)
		if errors.Is(err, ErrInterrupt) {
			ch.Reset()
			raw = raw[:0]
			continue
		}
		if err != nil {
			if ch.Pending() {
				s.runChunk(ch.Text(), strings.Join(raw, "\n"))
			}
			break
		}
		if !ch.Pending() {
			if cmd, ok := strings.CutPrefix(strings.TrimLeft(line, " \t"), ":"); ok && !strings.Contains(line, "\n") {
				if s.hist != nil && !strings.HasPrefix(line, " ") {
					s.record(line)
				}
				s.command(cmd)
				continue
			}
		}
		complete := false
		for _, l := range strings.Split(line, "\n") {
			raw = append(raw, l)
			complete = ch.Add(l)
		}
		if !complete && strings.Contains(line, "\n") && ch.Pending() {
			// a recalled or pasted multi-line chunk runs as it is
			complete = ch.Add("")
		}
		if !complete {
			continue
		}
		text := ch.Text()
		typed := strings.TrimRight(strings.Join(raw, "\n"), " \t\n")
		ch.Reset()
		raw = raw[:0]
		if strings.TrimSpace(text) == "" {
			continue
		}
		s.runChunk(text, typed)
	}
	switch {
	case s.interrupted:
		return 130
	case s.failed && !s.cfg.Interactive:
		return 1
	}
	return 0
}

// record adds a chunk to the history (ours and readline's).
func (s *shell) record(text string) {
	if s.hist == nil || strings.HasPrefix(text, " ") || strings.TrimSpace(text) == "" {
		return
	}
	host := ""
	if s.cur != nil {
		host = s.cur.name
	}
	if err := s.hist.Append(history.Entry{Time: time.Now(), Host: host, Text: text}); err != nil {
		s.print(s.r.Notice("history: %v", err))
	}
	if s.rl != nil {
		s.rl.saveHistory(text)
	}
}

func (s *shell) runChunk(text, typed string) {
	if typed == "" {
		typed = text
	}
	s.record(typed)
	if s.fan.target != nil {
		if !s.fanChunk(transport.EvalRequest{Src: text}) {
			s.failed = true
		}
		return
	}
	if s.cur == nil {
		s.fail("no host — :connect ADDR first")
		return
	}
	if !s.exec(s.cur, transport.EvalRequest{Src: text}, true) {
		s.failed = true
	}
}

// fail reports a local failure of a command or chunk.
func (s *shell) fail(format string, args ...any) {
	s.failed = true
	s.printErr(s.r.Fail(format, args...))
}

// exec runs one chunk on h, showing its output and result, and reports
// whether it succeeded. showValue false hides the result (for :load).
func (s *shell) exec(h *host, req transport.EvalRequest, showValue bool) bool {
	c, err := s.client(h)
	if err != nil {
		s.fail("%s", err.Error())
		return false
	}
	if req.Deadline == 0 {
		req.Deadline = s.timeout
	}
	ctx, release := s.intr.guard(s.ctx)
	var ow outWriter
	ow.s = s
	s.beginChunk(h)
	res, err := c.Exec(ctx, req, ow.write)
	interrupted := release()
	ow.finish()
	if err != nil && errors.Is(err, transport.ErrConnLost) {
		s.failed = true
		s.chunkLost(h, c, err, res.Seq)
		s.endChunk(h, c)
		if interrupted && !s.cfg.Interactive {
			s.interrupted, s.quit = true, true
		}
		return false
	}
	s.endChunk(h, c)
	if err != nil {
		s.reportErr(h, c, err, interrupted)
		return false
	}
	h.comp.clearNames()
	if res.Warn != "" {
		s.printErr(s.r.Notice("%s", res.Warn))
	}
	if showValue && !res.Value.IsNone() {
		s.print(withNewline(s.r.Value(res.Value)))
	}
	return true
}

// reportErr shows a failed request: a remote traceback, "cancelled", or a
// short line for a lost connection. Never a bare Go error chain.
func (s *shell) reportErr(h *host, c *transport.Client, err error, interrupted bool) {
	var re *transport.RemoteError
	switch {
	case errors.As(err, &re) && re.Kind() == transport.KindCancelled:
		s.printErr(s.r.Notice("cancelled"))
		if interrupted && !s.cfg.Interactive {
			s.interrupted = true
			s.quit = true
		}
	case errors.As(err, &re):
		s.printErr(s.r.Error(h.name, re))
	case errors.Is(err, transport.ErrConnLost):
		why := lostReason(err)
		if msg := s.markLost(h, c, why, 0); msg != "" {
			s.printErr(msg)
		}
		s.printErr(s.r.Fail("lost %s (%s)", h.name, why))
		if interrupted && !s.cfg.Interactive {
			s.interrupted, s.quit = true, true
		}
	case errors.Is(err, context.Canceled):
		s.printErr(s.r.Notice("cancelled"))
		if !s.cfg.Interactive {
			s.interrupted, s.quit = true, true
		}
	default:
		s.printErr(s.r.Fail("%s: %s", h.name, err.Error()))
	}
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// outWriter passes print() output on as it arrives and remembers whether
// the last of it ended a line, so the prompt never starts mid-line.
type outWriter struct {
	s       *shell
	pending bool // output written without its final newline
}

func (o *outWriter) write(text string) {
	if text == "" {
		return
	}
	o.s.print(o.s.r.Output(text))
	o.pending = !strings.HasSuffix(text, "\n")
}

func (o *outWriter) finish() {
	if o.pending {
		o.s.print("\n")
		o.pending = false
	}
}
