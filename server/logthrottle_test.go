package server

import (
	"testing"
	"time"
)

// TestLogLimiter: logBurst lines per peer IP per window; the rest are held
// back and counted, and the count comes out when the window ends, either
// with the peer's next line or from ended.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter()
	t0 := time.Unix(1000, 0)
	logged := 0
	for i := range 25 {
		ok, held := l.allow("10.0.0.1:5000", t0.Add(time.Duration(i)*time.Second))
		if held != 0 {
			t.Fatalf("line %d: %d held back reported inside the window", i, held)
		}
		if ok {
			logged++
		}
	}
	if logged != logBurst {
		t.Fatalf("logged %d of 25 lines in one window, want %d", logged, logBurst)
	}
	// Another peer has its own budget; another port of the same IP does not.
	if ok, _ := l.allow("10.0.0.2:1", t0); !ok {
		t.Fatal("a second peer was held back by the first one's lines")
	}
	if ok, _ := l.allow("10.0.0.1:6000", t0.Add(30*time.Second)); ok {
		t.Fatal("a new port of a flooding IP got a line")
	}
	// The next window: the line is logged and the count of the last comes out.
	ok, held := l.allow("10.0.0.1:7000", t0.Add(logWindow+time.Second))
	if !ok || held != 16 {
		t.Fatalf("first line of the next window: logged %v, held back %d, want true, 16", ok, held)
	}
	// A peer that goes quiet is reported by ended.
	for range logBurst + 3 {
		l.allow("10.0.0.3:1", t0)
	}
	got := l.ended(t0.Add(logWindow))
	if got["10.0.0.3"] != 3 || len(got) != 1 {
		t.Fatalf("ended: %v, want 10.0.0.3: 3 only", got)
	}
	if got := l.ended(t0.Add(2 * logWindow)); len(got) != 0 {
		t.Fatalf("ended twice: %v", got)
	}
}
