package repl

import "context"

// TestShell is a shell without a loop, for tests in package repl_test:
// Line runs one input line (a command or a one-line chunk) and Complete
// answers Tab for a line.
type TestShell struct{ s *shell }

// NewTestShell connects cfg's hosts. Close it when done.
func NewTestShell(ctx context.Context, cfg Config) (*TestShell, bool) {
	s := newShell(ctx, cfg)
	s.lines = cfg.Lines
	if !s.connectAll() {
		s.close()
		return nil, false
	}
	return &TestShell{s: s}, true
}

// Line runs one line.
func (t *TestShell) Line(line string) {
	if cmd, ok := cutCommand(line); ok {
		t.s.command(cmd)
		return
	}
	t.s.runChunk(line, line)
}

// Complete returns the candidates for Tab at the end of line, and the word
// they replace.
func (t *TestShell) Complete(line string) ([]string, string) { return t.s.completer.Complete(line) }

// Close closes the hosts.
func (t *TestShell) Close() { t.s.close() }

func cutCommand(line string) (string, bool) {
	if len(line) > 0 && line[0] == ':' {
		return line[1:], true
	}
	return "", false
}
