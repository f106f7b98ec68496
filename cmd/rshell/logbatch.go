package main

import (
	"io"
	"sync"
	"time"
)

// logFlushDelay is how long a line logged by `rshell serve` may wait to be
// written, with the lines logged after it.
const logFlushDelay = 10 * time.Millisecond

// logBatchMax is how many bytes may wait; a line that fills it is written
// at once, with those before it.
const logBatchMax = 64 << 10

// batchedLog is the server's log output. Lines are written in batches, at
// most logFlushDelay after the first of a batch, rather than each at once:
// every connect logs two or three lines, and each write to stderr (often a
// pipe to a supervisor, which it wakes) was on the connect's critical path
// on the server's CPU, between reading the client's first flight and
// answering it. A batch is written from a timer's goroutine, after the
// answers. Close writes what is left and makes later writes synchronous;
// a crash can lose at most the last logFlushDelay of lines.
type batchedLog struct {
	w        io.Writer
	delay    time.Duration // logFlushDelay but in tests
	maxBatch int           // logBatchMax but in tests
	mu       sync.Mutex    // guards the fields below
	// buf holds the lines not yet written; armed says the timer will
	// write them; closed makes every write synchronous.
	buf    []byte
	armed  bool
	closed bool
	timer  *time.Timer
	wmu    sync.Mutex // serialises writes to w, in the order taken from buf
}

func newBatchedLog(w io.Writer, delay time.Duration, maxBatch int) *batchedLog {
	b := &batchedLog{w: w, delay: delay, maxBatch: maxBatch}
	b.timer = time.AfterFunc(time.Hour, b.flush)
	b.timer.Stop()
	return b
}

// Write takes one log line (slog writes each record in one call).
func (b *batchedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wmu.Lock()
		defer b.wmu.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.maxBatch {
		b.mu.Unlock()
		b.flush()
		return len(p), nil
	}
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	b.mu.Unlock()
	return len(p), nil
}

// flush writes the waiting lines. A write error is dropped, as slog drops
// it: there is nowhere else to say it.
func (b *batchedLog) flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	buf := b.buf
	b.buf = nil
	b.armed = false
	b.mu.Unlock()
	if len(buf) > 0 {
		_, _ = b.w.Write(buf)
	}
}

// Close writes the waiting lines; later lines are written at once.
func (b *batchedLog) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.timer.Stop()
	b.flush()
	return nil
}
