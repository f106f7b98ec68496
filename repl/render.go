package repl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fatih/color"
)

// Renderer turns replicated values, remote errors and remote text into what
// the terminal shows. Every method returns one whole string, so the caller
// can put each piece on the terminal with a single write.
//
// All text that came from a remote host goes through Escape (or Starlark
// quoting) before it is returned: a hostile or careless server cannot move
// the cursor, retitle the window or clear the screen. The one exception is
// Output with Raw set, which the user asked for explicitly.
//
// A Renderer holds no state between calls and may be shared by goroutines.
type Renderer struct {
	Color    bool // ANSI colors (the caller decides: --color, NO_COLOR, isatty)
	Width    int  // terminal width; 0 = 80
	MaxItems int  // elements shown per container before abbreviating; 0 = 100
	MaxChars int  // total characters before abbreviating the whole value; 0 = 20000
	Raw      bool // --raw-output: pass remote print() text through unescaped
}

// Defaults used when a Renderer field is zero.
const (
	DefaultWidth    = 80
	DefaultMaxItems = 100
	DefaultMaxChars = 20000
)

// indentStep is the indentation of one level of a pretty-printed value.
const indentStep = 4

// getHint tells the user how to see all of an abbreviated value.
const getHint = "use :get NAME FILE.json for all of it"

func (r *Renderer) width() int {
	if r == nil || r.Width <= 0 {
		return DefaultWidth
	}
	return r.Width
}

func (r *Renderer) maxItems() int {
	if r == nil || r.MaxItems <= 0 {
		return DefaultMaxItems
	}
	return r.MaxItems
}

func (r *Renderer) maxChars() int {
	if r == nil || r.MaxChars <= 0 {
		return DefaultMaxChars
	}
	return r.MaxChars
}

func (r *Renderer) colored() bool { return r != nil && r.Color }

// A style is an SGR sequence; the empty style is plain text. The sequences
// are built from fatih/color's attributes but assembled here, so colors do
// not depend on fatih's global NoColor (which looks at the process's stdout)
// and a whole rendering stays one string.
type style string

func sgr(attrs ...color.Attribute) style {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		parts[i] = strconv.Itoa(int(a))
	}
	return style("\x1b[" + strings.Join(parts, ";") + "m")
}

const sgrReset = "\x1b[0m"

var (
	stylePlain   style
	styleString  = sgr(color.FgGreen)
	styleNumber  = sgr(color.FgCyan)
	styleKeyword = sgr(color.FgMagenta) // None, True, False
	styleKey     = sgr(color.FgBlue, color.Bold)
	styleField   = sgr(color.FgBlue)
	styleRef     = sgr(color.FgYellow)
	styleNote    = sgr(color.Faint)
	styleHeader  = sgr(color.Bold)
	styleErr     = sgr(color.FgRed, color.Bold)
	styleErrMsg  = sgr(color.FgRed)
	styleLoc     = sgr(color.FgCyan)
	styleFunc    = sgr(color.Bold)
	styleCaret   = sgr(color.FgRed, color.Bold)
	styleNotice  = sgr(color.FgYellow)
)

// paint wraps text in st when colors are on.
func (r *Renderer) paint(st style, text string) string {
	if !r.colored() || st == "" || text == "" {
		return text
	}
	return string(st) + text + sgrReset
}

// Output makes remote print() text safe for the terminal: control characters
// and escape sequences are shown escaped, newlines and tabs are kept. With
// Raw the text is passed through untouched.
func (r *Renderer) Output(text string) string {
	if r != nil && r.Raw {
		return text
	}
	return Escape(text)
}

// Notice formats a "! ..." line for messages such as a lost or returning
// host. The result ends with "\n".
func (r *Renderer) Notice(format string, args ...any) string {
	msg := strings.TrimRight(Escape(fmt.Sprintf(format, args...)), "\n")
	return r.paint(styleNotice, "! "+msg) + "\n"
}

// Fail formats a local error line, "Error: ...". The result ends with "\n".
func (r *Renderer) Fail(format string, args ...any) string {
	msg := strings.TrimRight(Escape(fmt.Sprintf(format, args...)), "\n")
	return r.paint(styleErr, "Error:") + " " + r.paint(styleErrMsg, msg) + "\n"
}

// group formats n with thousands separators: 99900 → "99,900".
func group(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
