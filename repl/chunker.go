package repl

import (
	"strings"
	"unicode/utf8"

	"go.starlark.net/syntax"
)

// Chunker decides whether the lines typed so far form a complete chunk: the
// unit the REPL sends to a host in one request.
//
// The rules follow Python's interactive prompt:
//
//   - A line that opens a compound statement (it ends with ':' outside
//     strings and brackets: def, if, for, while, else...) makes the chunk go
//     on until a blank line.
//   - Open brackets and unterminated triple-quoted strings go on by
//     themselves; the chunk completes as soon as they close, unless it is in
//     an indented block (which still waits for its blank line).
//   - A line ending in a backslash goes on.
//   - Otherwise a single line is a complete chunk.
//
// A real syntax error (one that no further line could mend) completes the
// chunk at once, so the host reports it rather than the prompt waiting
// forever. The Starlark parser decides which errors those are: an error
// met before the end of the input is real; "got end of file" is not.
//
// The zero Chunker is ready to use. Each line is scanned once, so pasting a
// long text costs time in proportion to its length (plus a parse now and
// then, at exponentially spaced line counts, while the chunk is open).
type Chunker struct {
	lines []string
	sc    chunkScan
}

// Add feeds one line, without its trailing newline, and reports whether the
// chunk is now complete. A blank line with nothing pending is a complete,
// empty chunk. After a complete chunk, read Text and call Reset.
func (c *Chunker) Add(line string) (complete bool) {
	c.lines = append(c.lines, line)
	c.sc.line(line)
	if !c.sc.open() {
		return true
	}
	if c.sc.cont {
		return false // a backslash at the end of the line always goes on
	}
	n := len(c.lines)
	if n > 64 && n&(n-1) != 0 {
		return false // parse a long paste only now and then
	}
	return !parseWantsMore(c.Text())
}

// Text returns the chunk so far, lines joined with "\n" (no final newline).
func (c *Chunker) Text() string { return strings.Join(c.lines, "\n") }

// Pending reports whether some lines are buffered.
func (c *Chunker) Pending() bool { return len(c.lines) > 0 }

// Reset forgets the buffered lines.
func (c *Chunker) Reset() {
	c.lines = c.lines[:0]
	c.sc = chunkScan{}
}

// NeedsMore reports whether src, lines separated by "\n", is an unfinished
// chunk: the Chunker, fed the lines of src one by one, would not yet call
// it complete. It is safe on any input.
func NeedsMore(src string) bool {
	var sc chunkScan
	for line := range strings.SplitSeq(src, "\n") {
		sc.line(line)
	}
	if !sc.open() {
		return false
	}
	if sc.cont {
		return true
	}
	return parseWantsMore(src)
}

// chunkOptions is the Starlark dialect rshell's hosts run; the chunker only
// parses with it, never executes.
var chunkOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// parseWantsMore parses src and reports false if it has a syntax error that
// more input cannot mend. The errors more input can mend are those at the
// end of the input: "got end of file", or the newline and outdent tokens the
// scanner makes up there when a block is open.
func parseWantsMore(src string) (more bool) {
	defer func() {
		if recover() != nil {
			more = false // never seen; but a parser panic must not hang the prompt
		}
	}()
	_, err := chunkOptions.Parse("<chunk>", src, 0)
	if err == nil {
		return true
	}
	e, ok := err.(syntax.Error)
	if !ok {
		return false
	}
	if strings.Contains(e.Msg, "end of file") || strings.Contains(e.Msg, "EOF") {
		return true
	}
	if strings.Contains(e.Msg, "got newline") || strings.Contains(e.Msg, "got outdent") {
		return atEnd(src, e.Pos)
	}
	return false
}

// atEnd reports whether pos is at or past the end of src (after its last
// character, on its last line, or beyond).
func atEnd(src string, pos syntax.Position) bool {
	lines := int32(strings.Count(src, "\n") + 1)
	last := src[strings.LastIndexByte(src, '\n')+1:]
	switch {
	case pos.Line > lines:
		return true
	case pos.Line < lines:
		return false
	}
	return pos.Col > int32(utf8.RuneCountInString(last))
}

// chunkScan is a small line-at-a-time scanner that tracks what the Starlark
// scanner would: bracket depth, open string literals, comments and
// backslash continuations. It never fails; invalid input is left to the
// parser.
type chunkScan struct {
	depth   int  // open brackets
	quote   byte // the quote of an open string literal, or 0
	triple  bool // the open string is triple-quoted
	strCont bool // a one-quote string continues past a backslash-newline
	cont    bool // the last line ended with a backslash outside strings
	block   bool // some logical line ended with ':' (a compound statement)
	blank   bool // the last line was blank
	lastSig byte // last significant byte of the current logical line
	nul     bool // a NUL ended the input, as far as Starlark is concerned
}

// open reports whether the scanned lines cannot yet be a complete chunk.
func (s *chunkScan) open() bool {
	return s.quote != 0 || s.cont || s.depth > 0 || (s.block && !s.blank)
}

func (s *chunkScan) line(line string) {
	s.blank = s.quote == 0 && strings.TrimSpace(line) == ""
	// Starlark reads "\r\n" and a lone "\r" as newlines too.
	line = strings.TrimSuffix(line, "\r")
	for {
		i := strings.IndexByte(line, '\r')
		if i < 0 {
			break
		}
		s.physLine(line[:i])
		line = line[i+1:]
	}
	s.physLine(line)
}

// physLine scans one line as Starlark's scanner sees lines.
func (s *chunkScan) physLine(line string) {
	if s.nul {
		return
	}
	s.cont = false
	s.strCont = false
	i := 0
	for i < len(line) {
		c := line[i]
		if s.quote != 0 {
			switch {
			case c == '\\':
				if i+1 >= len(line) {
					s.strCont = true // the escaped newline stays in the string
					i++
					continue
				}
				i += 2
			case c == s.quote && s.triple:
				if strings.HasPrefix(line[i:], string([]byte{c, c, c})) {
					s.quote, s.triple = 0, false
					i += 3
				} else {
					i++
				}
			case c == s.quote:
				s.quote = 0
				i++
			default:
				i++
			}
			continue
		}
		switch c {
		case 0:
			// Starlark's scanner takes a NUL outside a string for the
			// end of the input.
			s.nul = true
			return
		case '#':
			if strings.IndexByte(line[i:], 0) >= 0 {
				s.nul = true // a NUL ends the comment, then the input
				return
			}
			i = len(line)
			continue
		case '\'', '"':
			s.quote = c
			s.triple = strings.HasPrefix(line[i:], string([]byte{c, c, c}))
			if s.triple {
				i += 3
			} else {
				i++
			}
			s.lastSig = c
			continue
		case '(', '[', '{':
			s.depth++
		case ')', ']', '}':
			if s.depth > 0 {
				s.depth--
			}
		case '\\':
			if i == len(line)-1 {
				s.cont = true
				i++
				continue
			}
		case ' ', '\t', '\r', '\f':
			i++
			continue
		}
		s.lastSig = c
		i++
	}
	// A one-quote string ends at the end of its line (the parser reports
	// it) unless a backslash escaped the newline.
	if s.quote != 0 && !s.triple && !s.strCont {
		s.quote = 0
	}
	if s.quote == 0 && s.depth == 0 && !s.cont {
		if s.lastSig == ':' {
			s.block = true
		}
		s.lastSig = 0
	}
}
