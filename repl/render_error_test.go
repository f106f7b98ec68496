package repl

import (
	"strings"
	"testing"

	"github.com/rshell/rshell/transport"
)

func divZero() *transport.RemoteError {
	return &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindRuntime,
		Msg:  "floating-point division by zero",
		Frames: []transport.FrameInfo{
			{File: "<in[9]>", Line: 1, Col: 6, Func: "<toplevel>", Source: "z = x/y"},
		},
	}}
}

// fibError is a failure inside fib, defined in an uploaded file:
//
//	def fib(n):
//	    x = [1, 1]
//	    for i in range(n - 2):
//	        x.append(x[-1] + x[-2])
//	    return x[:n]
func fibError() *transport.RemoteError {
	return &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindRuntime,
		Msg:  "unknown binary op: string - int",
		Frames: []transport.FrameInfo{
			{File: "<in[12]>", Line: 1, Col: 4, Func: "<toplevel>", Source: `fib("10")`},
			{File: "remote_code.star", Line: 3, Col: 22, Func: "fib", Source: "    for i in range(n - 2):"},
		},
	}}
}

// recursionError is a runaway recursion whose repeated frames the server
// counted instead of sending.
func recursionError() *transport.RemoteError {
	f := transport.FrameInfo{File: "<in[7]>", Line: 2, Col: 13, Func: "f", Source: "return f(n + 1)"}
	last := f
	last.Repeat = 1634
	return &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindRuntime,
		Msg:  "stack overflow: 1638 calls deep, over the limit of 1000 (runaway recursion?)",
		Frames: []transport.FrameInfo{
			{File: "<in[7]>", Line: 3, Col: 2, Func: "<toplevel>", Source: "f(0)"}, f, f, last,
		},
	}}
}

var renderErrorCases = []struct {
	name string
	r    Renderer
	host string
	err  *transport.RemoteError
}{
	{"divzero", Renderer{}, "web1", divZero()},
	{"divzero_color", Renderer{Color: true}, "web1", divZero()},
	{"divzero_nohost", Renderer{}, "", divZero()},
	{"fib_two_frames", Renderer{}, "web1", fibError()},
	{"fib_two_frames_color", Renderer{Color: true}, "web1", fibError()},
	{"builtin_frame", Renderer{}, "db1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindRuntime, Msg: "len: value of type int has no len",
		Frames: []transport.FrameInfo{
			{File: "<in[2]>", Line: 1, Col: 4, Func: "<toplevel>", Source: "len(5)"},
			{Func: "len"},
		},
	}}},
	{"syntax", Renderer{}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindSyntax, Msg: "got '=', want primary expression",
		File: "<in[3]>", Line: 1, Col: 5, SrcLine: "x = = 1",
	}}},
	{"runaway_recursion", Renderer{}, "web1", recursionError()},
	{"syntax_color", Renderer{Color: true}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindSyntax, Msg: "got '=', want primary expression",
		File: "<in[3]>", Line: 1, Col: 5, SrcLine: "x = = 1",
	}}},
	{"syntax_indented", Renderer{}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindSyntax, Msg: "got ')', want primary expression",
		File: "<in[4]>", Line: 2, Col: 17, SrcLine: "    return (1 + )",
	}}},
	{"syntax_eol", Renderer{}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindSyntax, Msg: "got end of file, want primary expression",
		File: "<in[5]>", Line: 1, Col: 9, SrcLine: "for x in",
	}}},
	{"resolve", Renderer{}, "db1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindResolve, Msg: "undefined: x",
		File: "<in[1]>", Line: 1, Col: 1, SrcLine: "x",
	}}},
	{"deadline", Renderer{Color: true}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindDeadline, Msg: "deadline exceeded after 2s (the remote work was stopped)",
	}}},
	{"cancelled", Renderer{}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindCancelled, Msg: "cancelled",
	}}},
	{"hostile", Renderer{}, "web\x1b[2J1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindRuntime, Msg: "bad \x1b]0;owned\x07 message\nsecond line",
		Frames: []transport.FrameInfo{
			{File: "evil\x1b.star", Line: 2, Col: 1, Func: "f\r", Source: "\tprint(\"\x1b[2J\")\r\n"},
		},
	}}},
	{"syntax_tab_and_escape", Renderer{}, "web1", &transport.RemoteError{Info: transport.ErrorInfo{
		Kind: transport.KindSyntax, Msg: "unexpected ')'",
		File: "<in[6]>", Line: 1, Col: 9, SrcLine: "x\t= \"\x01\" )",
	}}},
}

func TestRenderErrorGolden(t *testing.T) {
	for _, tc := range renderErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Error(tc.host, tc.err)
			if !strings.HasSuffix(got, "\n") {
				t.Errorf("does not end with newline: %q", got)
			}
			checkRenderGolden(t, "error_"+tc.name+".golden", got)
			plain := got
			if tc.r.Color {
				plain = stripSGR(got)
			}
			for _, c := range plain {
				if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || isC1(c) {
					t.Errorf("control %U reaches the terminal: %q", c, got)
				}
			}
		})
	}
}

func TestRenderErrorMatchesTraceback(t *testing.T) {
	// Uncolored, the frames look like transport's own plain Traceback.
	for _, err := range []*transport.RemoteError{fibError(), recursionError()} {
		r := Renderer{}
		got := r.Error("", err)
		if want := err.Traceback() + "\n"; got != want {
			t.Errorf("got:\n%s\nwant:\n%s", got, want)
		}
	}
}

func TestRenderErrorNil(t *testing.T) {
	r := Renderer{}
	if got := r.Error("web1", nil); got != "" {
		t.Errorf("Error(nil) = %q", got)
	}
}
