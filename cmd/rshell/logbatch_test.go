package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write it gets and signals it on got.
type writes struct {
	mu  sync.Mutex
	all []string
	got chan struct{}
}

func newWrites() *writes { return &writes{got: make(chan struct{}, 100)} }

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.all = append(w.all, string(p))
	w.mu.Unlock()
	w.got <- struct{}{}
	return len(p), nil
}

func (w *writes) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.all...)
}

func TestBatchedLogHoldsLinesUntilClose(t *testing.T) {
	w := newWrites()
	b := newBatchedLog(w, time.Hour, 1<<20)
	for _, l := range []string{"one\n", "two\n", "three\n"} {
		if n, err := b.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", l, n, err)
		}
	}
	if got := w.list(); len(got) != 0 {
		t.Fatalf("lines written before their batch was due: %q", got)
	}
	b.Close()
	if got := w.list(); len(got) != 1 || got[0] != "one\ntwo\nthree\n" {
		t.Fatalf("Close wrote %q, want the three lines in order in one write", got)
	}
	b.Write([]byte("after\n"))
	if got := w.list(); len(got) != 2 || got[1] != "after\n" {
		t.Fatalf("a line after Close: writes %q, want it written at once", got)
	}
}

func TestBatchedLogWritesAFullBatchAtOnce(t *testing.T) {
	w := newWrites()
	b := newBatchedLog(w, time.Hour, 10)
	defer b.Close()
	b.Write([]byte("12345\n"))
	b.Write([]byte("67890\n")) // 12 bytes waiting: over the limit
	if got := w.list(); len(got) != 1 || got[0] != "12345\n67890\n" {
		t.Fatalf("writes %q, want both lines written by the Write that filled the batch", got)
	}
}

func TestBatchedLogWritesWithinTheDelay(t *testing.T) {
	w := newWrites()
	b := newBatchedLog(w, time.Millisecond, 1<<20)
	defer b.Close()
	b.Write([]byte("first\n"))
	b.Write([]byte("second\n"))
	var got string
	for got != "first\nsecond\n" {
		select {
		case <-w.got:
			got = strings.Join(w.list(), "")
		case <-time.After(10 * time.Second):
			t.Fatalf("after 10 s the timer had written %q", got)
		}
	}
	b.Write([]byte("third\n")) // a new batch: the timer is armed again
	select {
	case <-w.got:
	case <-time.After(10 * time.Second):
		t.Fatal("a line logged after the first batch was never written")
	}
	if all := strings.Join(w.list(), ""); all != "first\nsecond\nthird\n" {
		t.Fatalf("written %q", all)
	}
}
