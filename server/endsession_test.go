package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// sessionState polls b's session list (a round trip each time, at most
// 500) until want says yes, and returns the list that did.
func sessionState(t *testing.T, b *transport.Client, want func([]transport.SessionInfo) bool) []transport.SessionInfo {
	t.Helper()
	var list []transport.SessionInfo
	for range 500 {
		var err error
		if list, err = b.Sessions(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if want(list) {
			return list
		}
	}
	t.Fatalf("the server's sessions never got there: %+v", list)
	return nil
}

func has(id string) func([]transport.SessionInfo) bool {
	return func(l []transport.SessionInfo) bool {
		for _, s := range l {
			if strings.HasPrefix(id, s.ID) {
				return true
			}
		}
		return false
	}
}

func not(f func([]transport.SessionInfo) bool) func([]transport.SessionInfo) bool {
	return func(l []transport.SessionInfo) bool { return !f(l) }
}

// A session its client ended is dropped when that client leaves: it is
// gone from the list and cannot be resumed. A named namespace is not
// ended by one client, and a session resumed after it was ended is kept.
func TestEndSession(t *testing.T) {
	ts := start(t, false, nil)
	b := ts.dial(t)

	a := ts.dial(t)
	eval(t, a, "x = 1")
	att := a.Attachment()
	if err := a.EndSession(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if v := eval(t, a, "x + 1"); !v.Equal(transport.Int(2)) { // still usable until it leaves
		t.Fatalf("after EndSession: %+v", v)
	}
	sessionState(t, b, has(att.Session))
	a.Close()
	sessionState(t, b, not(has(att.Session)))
	o := ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	var re *transport.RemoteError
	if _, err := transport.Dial(testCtx(t), ts.addr, o); !errors.As(err, &re) || re.Kind() != transport.KindAuth || !strings.Contains(re.Info.Msg, "no session") {
		t.Fatalf("resuming an ended session: want the no-such-session error, got %v", err)
	}

	o = ts.opts
	o.NS = "team"
	n := ts.dialWith(t, o)
	if err := n.EndSession(testCtx(t)); !errors.As(err, &re) || !strings.Contains(re.Info.Msg, "shared") {
		t.Fatalf("ending a named namespace: want a refusal, got %v", err)
	}

	d := ts.dial(t)
	eval(t, d, "y = 2")
	datt := d.Attachment()
	if err := d.EndSession(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	o = ts.opts
	o.Session, o.Secret = datt.Session, datt.Secret
	e := ts.dialWith(t, o) // a resume: the session is wanted again
	d.Close()
	e.Close()
	list := sessionState(t, b, func(l []transport.SessionInfo) bool {
		for _, s := range l {
			if strings.HasPrefix(datt.Session, s.ID) && s.Attached == 0 {
				return true
			}
		}
		return false
	})
	if !has(datt.Session)(list) {
		t.Fatalf("the resumed session was dropped: %+v", list)
	}
}

// At its session limit the server refuses a new session with a clear
// error, to that client alone; resuming still works, and an ended session
// makes room.
func TestSessionLimit(t *testing.T) {
	ts := start(t, false, func(c *server.Config) { c.MaxSessions = 3 })
	a, b, c := ts.dial(t), ts.dial(t), ts.dial(t)
	eval(t, a, "x = 1")
	var re *transport.RemoteError
	_, err := transport.Dial(testCtx(t), ts.addr, ts.opts)
	if !errors.As(err, &re) || re.Kind() != transport.KindLimit || !strings.Contains(re.Info.Msg, "limit of 3 sessions") {
		t.Fatalf("a fourth session: want the session limit's error, got %v", err)
	}
	o := ts.opts
	o.NS = "team"
	if _, err := transport.Dial(testCtx(t), ts.addr, o); !errors.As(err, &re) || re.Kind() != transport.KindLimit {
		t.Fatalf("a new named namespace: want the session limit's error, got %v", err)
	}
	att := a.Attachment()
	o = ts.opts
	o.Session, o.Secret = att.Session, att.Secret
	if v := eval(t, ts.dialWith(t, o), "x"); !v.Equal(transport.Int(1)) {
		t.Fatalf("resume at the limit: %+v", v)
	}
	if err := c.EndSession(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	sessionState(t, b, func(l []transport.SessionInfo) bool { return len(l) == 2 })
	if v := eval(t, ts.dial(t), "2 + 2"); !v.Equal(transport.Int(4)) {
		t.Fatalf("a new session once one ended: %+v", v)
	}
}
