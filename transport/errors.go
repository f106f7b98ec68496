package transport

import (
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned by a Client that has been closed.
var ErrClosed = errors.New("connection closed")

// ErrConnLost is wrapped by errors caused by a connection that broke,
// including a stream that ended without its terminal frame.
var ErrConnLost = errors.New("connection lost")

// RemoteError is an error the server reported: the request reached the
// other side and was refused or failed there. It is never a transport failure.
type RemoteError struct {
	Info ErrorInfo
}

func (e *RemoteError) Error() string {
	if e.Info.Kind == KindSyntax && e.Info.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Info.File, e.Info.Line, e.Info.Col, e.Info.Msg)
	}
	return e.Info.Msg
}

// Kind returns the error kind (KindRuntime, KindCancelled...).
func (e *RemoteError) Kind() string { return e.Info.Kind }

// Traceback renders the error as plain text, most recent call last.
func (e *RemoteError) Traceback() string {
	var b strings.Builder
	if len(e.Info.Frames) > 0 {
		b.WriteString("Traceback (most recent call last):\n")
		for _, f := range e.Info.Frames {
			if f.File == "" {
				fmt.Fprintf(&b, "  <builtin> in %s\n", f.Func)
				continue
			}
			fmt.Fprintf(&b, "  %s:%d:%d in %s\n", f.File, f.Line, f.Col, f.Func)
			if s := strings.TrimSpace(f.Source); s != "" {
				fmt.Fprintf(&b, "    %s\n", s)
			}
			if f.Repeat > 0 {
				fmt.Fprintf(&b, "  %s\n", RepeatNote(f.Repeat))
			}
		}
	}
	b.WriteString("Error: ")
	b.WriteString(e.Error())
	return b.String()
}

// RepeatNote is how a traceback shows FrameInfo.Repeat.
func RepeatNote(n int) string {
	if n == 1 {
		return "[previous frame repeated 1 more time]"
	}
	return fmt.Sprintf("[previous frame repeated %d more times]", n)
}

func remoteErr(m *Msg) error {
	if m.Err == nil {
		return &RemoteError{Info: ErrorInfo{Kind: KindProtocol, Msg: "error frame without details"}}
	}
	return &RemoteError{Info: *m.Err}
}
