package repl

import (
	"context"
	"os"
	"os/signal"
	"sync"
)

// interrupts turns Ctrl-C (SIGINT; a console Ctrl-C event on Windows) into
// the cancellation of whatever the shell is waiting on. Inside Readline the
// terminal is raw and Ctrl-C is a key (ErrInterrupt); outside it, while a
// chunk or a command runs, the terminal is cooked and Ctrl-C is a signal.
//
// Interactive shells catch SIGINT for their whole life, so a Ctrl-C that
// lands between two requests is harmless. A script catches it only while a
// request runs: at other times Ctrl-C ends the process as usual.
type interrupts struct {
	enabled, always bool

	mu     sync.Mutex
	cancel context.CancelFunc
	got    bool

	sigs chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
}

func newInterrupts(enabled, always bool) *interrupts {
	in := &interrupts{enabled: enabled, always: always}
	if enabled && always {
		in.start()
	}
	return in
}

func (in *interrupts) start() {
	in.sigs = make(chan os.Signal, 1)
	in.done = make(chan struct{})
	signal.Notify(in.sigs, os.Interrupt)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		for {
			select {
			case <-in.sigs:
				in.mu.Lock()
				if in.cancel != nil {
					in.got = true
					in.cancel()
				}
				in.mu.Unlock()
			case <-in.done:
				return
			}
		}
	}()
}

func (in *interrupts) stop() {
	if in.sigs == nil {
		return
	}
	signal.Stop(in.sigs)
	close(in.done)
	in.wg.Wait()
	in.sigs = nil
}

// guard returns a context that Ctrl-C cancels and a release function that
// reports whether Ctrl-C was pressed.
func (in *interrupts) guard(parent context.Context) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(parent)
	if !in.enabled {
		return ctx, func() bool { cancel(); return false }
	}
	in.mu.Lock()
	in.cancel, in.got = cancel, false
	in.mu.Unlock()
	if !in.always {
		in.start()
	}
	return ctx, func() bool {
		if !in.always {
			in.stop()
		}
		in.mu.Lock()
		got := in.got
		in.cancel, in.got = nil, false
		in.mu.Unlock()
		cancel()
		return got
	}
}
