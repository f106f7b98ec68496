package repl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rshell/rshell/transport"
)

// Reconnecting: when a host's connection drops, a reconnector goroutine
// (one per host, owned by the shell's WaitGroup and stopped by closeHost)
// dials it again with capped exponential backoff and jitter, resuming the
// same session. A chunk sent meanwhile waits for it. A chunk that was
// running when the connection dropped is never sent again: once the host
// is back, the shell says how it ended, from the server's Attachment.Last.

const stateReconnecting = "reconnecting"

// Backoff of the reconnector: the first retry comes after about
// backoffBase, each later one waits twice as long, up to backoffCap; each
// wait is jittered to 50–100% of its nominal length so that many clients
// of one restarted server do not retry in step.
const (
	backoffBase = 100 * time.Millisecond
	backoffCap  = 5 * time.Second
)

// waitNoticeAfter is how long a chunk waits for a reconnecting host before
// the shell says it is waiting.
const waitNoticeAfter = 500 * time.Millisecond

// reconnState is a host's reconnect bookkeeping, guarded by host.mu.
type reconnState struct {
	attempt int       // the attempt under way or next (1-based)
	next    time.Time // when the next attempt starts; zero while dialing
	lastErr string    // why the previous attempt failed
	cancel  context.CancelFunc
	changed chan struct{} // closed at every state change
	kick    chan struct{} // try now instead of waiting out the backoff
	busy    bool          // a chunk is running on this host's client
	pending uint64        // seq of the chunk running when the connection dropped
}

// backoff is the jittered wait before attempt n (1-based).
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffCap; i++ {
		d *= 2
	}
	d = min(d, backoffCap)
	return d/2 + rand.N(d/2+1)
}

// setStateLocked changes h's state and wakes whoever waits on it. h.mu is
// held.
func (h *host) setStateLocked(state string) {
	h.state = state
	if h.re.changed != nil {
		close(h.re.changed)
	}
	h.re.changed = make(chan struct{})
}

func (h *host) changedLocked() chan struct{} {
	if h.re.changed == nil {
		h.re.changed = make(chan struct{})
	}
	return h.re.changed
}

// stopReconnectLocked stops h's reconnector, if any. h.mu is held.
func (h *host) stopReconnectLocked() {
	if h.re.cancel != nil {
		h.re.cancel()
		h.re.cancel = nil
	}
}

// stateTextLocked is the STATE column of :hosts. h.mu is held.
func (h *host) stateTextLocked() string {
	if h.state != stateReconnecting {
		return h.state
	}
	if h.re.next.IsZero() {
		return fmt.Sprintf("reconnecting (attempt %d, trying now)", h.re.attempt)
	}
	wait := max(time.Until(h.re.next), 0)
	return fmt.Sprintf("reconnecting (attempt %d, next try in %.1fs)", h.re.attempt, wait.Seconds())
}

// connect dials h, resuming its session when it has one. When the server
// no longer has the session (it expired, or a server without a state dir
// restarted), it starts a new one and reports refused.
func (s *shell) connect(ctx context.Context, h *host) (c *transport.Client, refused bool, err error) {
	opts := h.opts
	opts.First = s.first
	h.mu.Lock()
	resume := h.session != ""
	if resume {
		opts.Session, opts.Secret = h.session, h.secret
	}
	h.mu.Unlock()
	c, err = transport.Dial(ctx, h.addr, opts)
	if err != nil && resume && resumeRefused(err) {
		opts.Session, opts.Secret = "", ""
		c, err = transport.Dial(ctx, h.addr, opts)
		return c, true, err
	}
	return c, false, err
}

// resumeRefused tells an attach refused for its session id and secret
// from a handshake refused for its token.
func resumeRefused(err error) bool {
	var re *transport.RemoteError
	return errors.As(err, &re) && re.Kind() == transport.KindAuth && !errors.Is(err, transport.ErrAuth)
}

// permanent reports whether retrying cannot help: the server refuses the
// token or the protocol version, or its certificate is not the pinned one.
func permanent(err error) bool {
	for _, e := range []error{transport.ErrAuth, transport.ErrVersion, transport.ErrHostKeyChanged,
		transport.ErrUnknownHost, transport.ErrFingerprintDiff} {
		if errors.Is(err, e) {
			return true
		}
	}
	var re *transport.RemoteError
	return errors.As(err, &re) && (re.Kind() == transport.KindAuth || re.Kind() == transport.KindVersion)
}

// dial connects h (resuming its session when it had one) and installs the
// new client, saying so when it was a reconnection.
func (s *shell) dial(h *host) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	c, refused, err := s.connect(ctx, h)
	if err != nil {
		return err
	}
	if !s.install(h, c, refused) {
		return fmt.Errorf("%s is closed", h.name)
	}
	return nil
}

// install makes c h's client. When h had a session before, it first tells
// the user how the reconnection went: session resumed (and what could not
// be restored), or a new session; and how the chunk that was running when
// the connection dropped ended. It returns false (and closes c) when h
// was closed meanwhile.
func (s *shell) install(h *host, c *transport.Client, refused bool) bool {
	att := c.Attachment()
	h.mu.Lock()
	if h.state == stateClosed {
		h.mu.Unlock()
		c.Close()
		return false
	}
	if h.state == stateConnected && h.client != nil {
		// Another path (a fan-out's dial, the reconnector) got there
		// first: keep its connection.
		h.mu.Unlock()
		c.Close()
		return true
	}
	again := h.session != ""
	pending := h.re.pending
	h.re.pending = 0
	h.stopReconnectLocked()
	h.client = c
	h.reported = false
	h.lostWhy = ""
	h.re.attempt, h.re.next, h.re.lastErr = 0, time.Time{}, ""
	h.info = c.Info()
	h.session, h.secret = att.Session, att.Secret
	if again {
		// Told before the state changes, so that it comes before the
		// output of a chunk that was waiting for the host.
		s.asyncNotice(func(r *Renderer) string { return s.backNotice(r, h, att, refused, pending) })
	}
	h.setStateLocked(stateConnected)
	h.mu.Unlock()
	h.comp.clear()
	s.watch(h, c)
	return true
}

// backNotice is what the shell says when h is back.
func (s *shell) backNotice(r *Renderer, h *host, att transport.Attachment, refused bool, pending uint64) string {
	var b strings.Builder
	switch {
	case refused || !att.Resumed:
		b.WriteString(r.Notice("%s is back, but its session was gone (expired, or the server lost it): a new session %s… was started and the namespace was lost", h.name, short(att.Session)))
		if pending != 0 {
			b.WriteString(r.Notice("the chunk that was running when %s was lost went with it", h.name))
		}
		return b.String()
	case len(att.NotRestored) > 0:
		b.WriteString(r.Notice("%s is back — session resumed; could not restore: %s", h.name, strings.Join(att.NotRestored, ", ")))
	default:
		b.WriteString(r.Notice("%s is back — session resumed, namespace intact", h.name))
	}
	if pending == 0 {
		return b.String()
	}
	b.WriteString(pendingReport(r, h.name, h.opts.NS != "", pending, att.Last))
	return b.String()
}

// pendingReport says how the chunk numbered pending, running when host's
// connection dropped, ended, as the server's last chunk tells.
func pendingReport(r *Renderer, host string, shared bool, pending uint64, last *transport.LastChunk) string {
	what := fmt.Sprintf("the chunk that was running when %s was lost", host)
	notDone := r.Notice("%s did not complete (the namespace is as after the last completed chunk)", what)
	// In a shared namespace every client numbers its chunks from a random
	// base of its own, so another client's last chunk never carries ours.
	switch {
	case last == nil:
		return notDone
	case last.Seq > pending || shared && last.Seq != pending:
		return r.Notice("%s: cannot tell how it ended (other clients of this shared namespace ran chunks since) — check the namespace", what)
	case last.Seq < pending:
		return notDone
	}
	switch last.State {
	case "done":
		out := r.Notice("%s completed:", what)
		if len(last.Value) == 0 {
			return out
		}
		v, err := transport.DecodeValue(last.Value, 0)
		if err != nil {
			return out + r.Notice("(its result could not be decoded: %v)", err)
		}
		if v.IsNone() {
			return r.Notice("%s completed", what)
		}
		return out + withNewline(r.Value(v))
	case "failed":
		out := r.Notice("%s failed:", what)
		if last.Err != nil {
			out += r.Error(host, &transport.RemoteError{Info: *last.Err})
		}
		return out
	case "running":
		return r.Notice("%s is still running there; its output and result will not be shown", what)
	}
	return notDone
}

// asyncNotice renders and prints a message from a goroutine other than the
// loop's. The loop changes the renderer's width only under outMu, so
// rendering under it is safe.
func (s *shell) asyncNotice(render func(*Renderer) string) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	text := render(s.r)
	if text == "" {
		return
	}
	if s.cfg.Interactive {
		_, _ = s.out.Write([]byte(text))
	} else {
		_, _ = s.errw.Write([]byte(text))
	}
}

// watch notices when c's connection goes away by itself. While a chunk
// runs on h, the chunk's own error says why, so the watcher leaves it to
// exec.
func (s *shell) watch(h *host, c *transport.Client) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-c.Done():
		case <-s.closing:
			return
		}
		h.mu.Lock()
		busy := h.re.busy && h.client == c
		h.mu.Unlock()
		if busy {
			return
		}
		if msg := s.markLost(h, c, c.LostReason(), 0); msg != "" {
			s.notify(msg)
		}
	}()
}

// markLost records that c (h's client) is gone and starts the reconnector.
// pending is the seq of a chunk that was running on c (0 for none). It
// returns the notice to print, or "" when the loss was already known or
// was ours.
func (s *shell) markLost(h *host, c *transport.Client, why string, pending uint64) string {
	select {
	case <-s.closing:
		return ""
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != c {
		return ""
	}
	if pending != 0 {
		h.re.pending = pending
	}
	if h.state != stateConnected {
		return ""
	}
	h.lostWhy = why
	h.reported = true
	h.re.attempt, h.re.lastErr = 1, ""
	h.re.kick = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(s.ctx)
	h.re.cancel = cancel
	h.setStateLocked(stateReconnecting)
	s.wg.Add(1)
	go s.reconnect(ctx, h)
	if pending != 0 {
		return s.r.Notice("lost %s (%s) while a chunk was running; reconnecting… (you will be told whether it completed)", h.name, why)
	}
	return s.r.Notice("lost %s (%s); reconnecting…", h.name, why)
}

// reconnect dials h until it is back, ctx is cancelled (the host was
// closed) or retrying cannot help.
func (s *shell) reconnect(ctx context.Context, h *host) {
	defer s.wg.Done()
	for attempt := 1; ; attempt++ {
		d := backoff(attempt)
		h.mu.Lock()
		h.re.attempt, h.re.next = attempt, time.Now().Add(d)
		kick := h.re.kick
		h.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-kick:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.closing:
			t.Stop()
			return
		}
		h.mu.Lock()
		h.re.next = time.Time{}
		h.mu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		c, refused, err := s.connect(dctx, h)
		cancel()
		if err == nil {
			if ctx.Err() != nil {
				c.Close()
				return
			}
			s.install(h, c, refused)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if permanent(err) {
			h.mu.Lock()
			if h.state == stateReconnecting {
				h.lostWhy = connMsg(err)
				h.re.cancel = nil
				h.setStateLocked(stateLost)
			}
			h.mu.Unlock()
			s.notify(s.r.Notice("cannot reconnect to %s: %s — it will try again on next use", h.name, connMsg(err)))
			return
		}
		h.mu.Lock()
		h.re.lastErr = connMsg(err)
		h.mu.Unlock()
	}
}

// client returns h's live client. A lost host is dialed once more; a
// reconnecting one is waited for, bounded by the chunk deadline (or, in a
// script without one, the dial timeout) and Ctrl-C.
func (s *shell) client(h *host) (*transport.Client, error) {
	c, state := h.snapshot()
	switch state {
	case stateConnected:
		return c, nil
	case stateClosed:
		return nil, fmt.Errorf("%s is closed — :connect %s", h.name, h.addr)
	case stateLost:
		if err := s.dial(h); err != nil {
			return nil, fmt.Errorf("%s is still unreachable: %s", h.name, connMsg(err))
		}
		c, _ = h.snapshot()
		return c, nil
	}
	return s.waitFor(h)
}

func (s *shell) waitFor(h *host) (*transport.Client, error) {
	limit := s.timeout
	if limit == 0 && !s.cfg.Interactive {
		limit = s.cfg.DialTimeout
	}
	ctx, release := s.intr.guard(s.ctx)
	defer release()
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	tell := time.NewTimer(waitNoticeAfter)
	defer tell.Stop()
	h.mu.Lock()
	if h.re.kick != nil {
		select {
		case h.re.kick <- struct{}{}: // retry now: someone is waiting
		default:
		}
	}
	h.mu.Unlock()
	for {
		h.mu.Lock()
		state, c, changed, lastErr := h.state, h.client, h.changedLocked(), h.re.lastErr
		h.mu.Unlock()
		switch state {
		case stateConnected:
			return c, nil
		case stateClosed:
			return nil, fmt.Errorf("%s is closed — :connect %s", h.name, h.addr)
		case stateLost:
			return nil, fmt.Errorf("%s is lost: %s", h.name, h.lostReason())
		}
		select {
		case <-changed:
		case <-tell.C:
			if s.cfg.Interactive {
				h.mu.Lock()
				attempt := h.re.attempt
				h.mu.Unlock()
				s.print(s.r.Notice("waiting for %s to come back (reconnecting, attempt %d) — Ctrl-C stops waiting", h.name, attempt))
			}
		case <-ctx.Done():
			why := ""
			if lastErr != "" {
				why = " (last try: " + lastErr + ")"
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%s did not come back within %s%s — nothing was sent", h.name, limit, why)
			}
			return nil, fmt.Errorf("stopped waiting: %s is still reconnecting%s — nothing was sent", h.name, why)
		}
	}
}

func (h *host) lostReason() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lostWhy
}

// beginChunk marks a chunk running on h's client c; endChunk unmarks it and
// notices a connection that died while the chunk's answer came back.
func (s *shell) beginChunk(h *host) {
	h.mu.Lock()
	h.re.busy = true
	h.mu.Unlock()
}

func (s *shell) endChunk(h *host, c *transport.Client) {
	h.mu.Lock()
	h.re.busy = false
	h.mu.Unlock()
	select {
	case <-c.Done():
		if msg := s.markLost(h, c, c.LostReason(), 0); msg != "" {
			s.notify(msg)
		}
	default:
	}
}

// chunkLost handles a chunk whose connection dropped: the host starts
// reconnecting and will tell how the chunk ended once it is back.
func (s *shell) chunkLost(h *host, c *transport.Client, err error, seq uint64) {
	why := lostReason(err)
	msg := s.markLost(h, c, why, seq)
	if msg == "" {
		h.mu.Lock()
		back := h.client != c
		h.mu.Unlock()
		if back && seq != 0 {
			// The host was lost and back before this chunk's error came:
			// it went out on a connection already dead.
			msg = s.r.Notice("lost %s (%s) as the chunk was sent; it is back now — the chunk most likely did not run: check before running it again", h.name, why)
		} else {
			msg = s.r.Notice("the chunk that was running on %s did not finish here: you will be told whether it completed once %s is back", h.name, h.name)
		}
	}
	s.printErr(msg)
}
