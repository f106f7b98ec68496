package repl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/chzyer/readline"
	"github.com/rshell/rshell/history"
)

// rlReader is the terminal LineReader, on chzyer/readline. It works around
// that library's known traps:
//
//   - One goroutine (the loop's) calls Readline; nothing else does, and
//     Close is called only when it has returned (#217: Close hangs while
//     another goroutine is inside Readline).
//   - Readline's own history file is off (#245: it saves piped input and
//     rewrites the file 0644). The history package is the store; its
//     entries are fed to readline's in-memory history, one entry per
//     chunk, multi-line chunks whole.
//   - Output goes through rl.Stdout() in whole lines, one Write each (the
//     shell's print does that), so readline can redraw the prompt and the
//     half-typed line below an asynchronous message.
type rlReader struct {
	rl      *readline.Instance
	painter *contPainter
}

func newReadline(in io.Reader, out io.Writer, comp *completer, hist *history.History) (*rlReader, error) {
	p := &contPainter{}
	cfg := &readline.Config{
		Prompt:                 "> ",
		HistoryLimit:           history.DefaultMaxEntries,
		DisableAutoSaveHistory: true,
		HistorySearchFold:      true,
		AutoComplete:           &rlCompleter{c: comp},
		InterruptPrompt:        "^C",
		Painter:                p,
		Stdout:                 out,
		Stderr:                 out,
	}
	if rc, ok := in.(io.ReadCloser); ok && in != io.Reader(os.Stdin) {
		cfg.Stdin = rc
	}
	rl, err := readline.NewEx(cfg)
	if err != nil {
		return nil, err
	}
	r := &rlReader{rl: rl, painter: p}
	if hist != nil {
		for _, e := range hist.Entries() {
			r.saveHistory(e.Text)
		}
	}
	return r, nil
}

// ReadLine reads one line (or a recalled multi-line chunk, with its
// newlines) at prompt.
func (r *rlReader) ReadLine(prompt string) (string, error) {
	r.painter.set(prompt)
	r.rl.SetPrompt(prompt)
	line, err := r.rl.Readline()
	if err == readline.ErrInterrupt {
		return "", ErrInterrupt
	}
	return line, err
}

func (r *rlReader) saveHistory(text string) { _ = r.rl.SaveHistory(text) }

// Stdout is the writer that prints above the prompt.
func (r *rlReader) Stdout() io.Writer { return r.rl.Stdout() }

// Width is the terminal's width.
func (r *rlReader) Width() int { return readline.GetScreenWidth() }

// Close restores the terminal.
func (r *rlReader) Close() error { return r.rl.Close() }

// contPainter shows the lines of a recalled multi-line chunk under a
// continuation prompt, as they were typed. readline knows nothing of
// newlines in its buffer: before redrawing it clears only the cursor's
// row, so the painter also moves up over the rows it drew above and
// clears them.
type contPainter struct {
	mu     sync.Mutex
	prompt []rune
	cont   []rune
	above  int // rows drawn above the cursor's row by the last paint
}

func (p *contPainter) set(prompt string) {
	p.mu.Lock()
	p.prompt, p.cont, p.above = []rune(prompt), []rune(contFor(prompt)), 0
	p.mu.Unlock()
}

func (p *contPainter) Paint(line []rune, _ int) []rune {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(line)
	submitted := n > 0 && line[n-1] == '\n' // Enter, Ctrl-C and Ctrl-D end the buffer with '\n'
	if submitted {
		n--
	}
	rows := 0
	for _, r := range line[:n] {
		if r == '\n' {
			rows++
		}
	}
	if rows == 0 && p.above == 0 {
		return line
	}
	var out []rune
	if p.above > 0 {
		// readline wrote the prompt on the last row; redraw from the first.
		out = append(out, []rune(fmt.Sprintf("\x1b[%dA\r\x1b[J", p.above))...)
		out = append(out, p.prompt...)
	}
	for i, r := range line {
		out = append(out, r)
		if r == '\n' && i < n {
			out = append(out, p.cont...)
		}
	}
	p.above = rows
	if submitted {
		p.above = 0
	}
	return out
}

// rlCompleter adapts completer to readline's AutoCompleter, which wants
// the rest of each candidate after the typed word.
type rlCompleter struct{ c *completer }

func (a *rlCompleter) Do(line []rune, pos int) ([][]rune, int) {
	cands, word := a.c.Complete(string(line[:pos]))
	wl := len([]rune(word))
	out := make([][]rune, 0, len(cands))
	for _, c := range cands {
		if !strings.HasPrefix(c, word) {
			continue
		}
		out = append(out, []rune(c[len(word):]))
	}
	return out, wl
}
