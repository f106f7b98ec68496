package repl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/chzyer/readline"
	"github.com/rshell/rshell/history"
	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/transport"
)

// DefaultPort is the port an address without one gets.
const DefaultPort = "18812"

// HostSpec names one host to connect to at start.
type HostSpec struct {
	Name    string // shown in the prompt; "" = the address's host part
	Addr    string // host:port
	Options transport.Options
}

// LineReader is where the loop reads its input, one line at a time. It
// returns io.EOF at the end of input and ErrInterrupt when the user pressed
// Ctrl-C at the prompt (the line being typed is dropped).
type LineReader interface {
	ReadLine(prompt string) (string, error)
}

// ErrInterrupt is returned by a LineReader for Ctrl-C at the prompt.
var ErrInterrupt = readline.ErrInterrupt

// Config is everything Run needs.
type Config struct {
	Hosts []HostSpec
	// Options are the dial options of hosts added later with :connect or
	// :use ADDR (token, TLS trust...).
	Options transport.Options

	// Lines, when set, is the input. Otherwise Run reads In: through
	// readline on a terminal when Interactive, else line by line.
	Lines LineReader
	In    io.Reader
	Out   io.Writer // results and print() output
	Err   io.Writer // tracebacks and errors when not interactive

	Color     bool
	Width     int // terminal width for pretty-printing; 0 = 80 (or the terminal's)
	MaxItems  int // 0 = the renderer's default
	MaxChars  int
	RawOutput bool // pass remote control characters through (scripts)

	Timeout     time.Duration // default deadline per chunk; 0 = none
	Interactive bool          // a person at a terminal: prompts, colors, history, notices
	// HistoryPath is the history file; "" = no history. History is never
	// recorded when not Interactive.
	HistoryPath string
	// Signals makes Ctrl-C (SIGINT) while a chunk runs cancel it remotely.
	Signals bool
	// DialTimeout bounds each connection attempt; 0 = 15s.
	DialTimeout time.Duration
	// ConfirmNewHosts asks the user, through the line reader, whether to
	// trust a server certificate seen for the first time (hosts whose
	// Options.Trust.Confirm is nil).
	ConfirmNewHosts bool

	// Target, when set, is what the shell starts on instead of Hosts: a
	// host, a comma-separated list, a range or an @group (fanout.go).
	Target string
	// Inventory is the hosts and groups file; nil = read InventoryPath
	// ("" = DefaultConfigPath(), which may be missing) when first needed.
	Inventory     *inventory.Inventory
	InventoryPath string
	// Fanout caps the hosts dialed at once; 0 = the config file's, else
	// DefaultFanout.
	Fanout int
}

// Run runs the shell until its input ends or :quit, and returns the exit
// status: 0, or 1 when a host could not be reached at start or (when not
// interactive) any chunk or command failed; 130 when a script was
// interrupted.
func Run(ctx context.Context, cfg Config) int {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Err == nil {
		cfg.Err = os.Stderr
	}
	if cfg.In == nil {
		cfg.In = os.Stdin
	}
	s := newShell(ctx, cfg)
	defer s.close()

	if cfg.Interactive && cfg.HistoryPath != "" {
		h, err := history.Open(cfg.HistoryPath, history.Options{})
		if err != nil {
			s.printErr(s.r.Notice("history disabled: %v", err))
		} else {
			s.hist = h
		}
	}

	lines := cfg.Lines
	if lines == nil {
		if cfg.Interactive {
			rl, err := newReadline(cfg.In, cfg.Out, s.completer, s.hist)
			if err != nil {
				s.printErr(s.r.Fail("cannot start the line editor: %v", err))
				return 1
			}
			defer rl.Close()
			s.setOutput(rl.Stdout(), rl.Stdout())
			if w := rl.Width(); w > 0 && cfg.Width == 0 {
				s.r.Width = w
				s.widthFn = rl.Width
			}
			s.rl = rl
			lines = rl
		} else {
			lines = &plainReader{r: bufio.NewReader(cfg.In)}
		}
	}
	s.lines = lines

	if cfg.Target != "" {
		if !s.startTarget(cfg.Target) {
			return 1
		}
	} else if !s.connectAll() {
		return 1
	}
	return s.loop()
}

// plainReader reads lines from a non-terminal; it ignores prompts.
type plainReader struct {
	r *bufio.Reader
}

func (p *plainReader) ReadLine(string) (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && line != "" {
			return strings.TrimRight(line, "\r"), nil
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ScriptReader is a LineReader over fixed lines, for tests and scripts. When
// Echo is set, it writes each prompt and line to it as a terminal would, so
// that a transcript reads like a session. A line equal to Interrupt stands
// for Ctrl-C at the prompt.
type ScriptReader struct {
	Lines []string
	Echo  io.Writer
}

// Interrupt is the ScriptReader line that stands for Ctrl-C.
const Interrupt = "\x03"

// ReadLine returns the next line.
func (s *ScriptReader) ReadLine(prompt string) (string, error) {
	if len(s.Lines) == 0 {
		return "", io.EOF
	}
	line := s.Lines[0]
	s.Lines = s.Lines[1:]
	if line == Interrupt {
		if s.Echo != nil {
			io.WriteString(s.Echo, prompt+"^C\n")
		}
		return "", ErrInterrupt
	}
	if s.Echo != nil {
		io.WriteString(s.Echo, prompt+line+"\n")
	}
	return line, nil
}
