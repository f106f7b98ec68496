package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
)

// hosted is a session as the server keeps it: the namespace, its
// credentials, who is attached, and how its last chunk ended.
type hosted struct {
	id, secret string
	ns         string // named shared namespace, or ""
	created    time.Time
	opts       session.Options
	// sess is made when first used (session()): a connection that attaches
	// and stays idle costs no interpreter.
	sess atomic.Pointer[session.Session]

	cost chunkCost // guarded by the server's cpuShare

	mu          sync.Mutex
	attached    int
	detached    time.Time
	last        transport.LastChunk
	notRestored []string // told to the first client that resumes after a restart
	forget      bool     // drop when the last connection detaches (TForget)
	dropped     bool     // no longer in the registry: nothing more is stored
}

// isDropped reports whether the session was dropped from the registry.
func (h *hosted) isDropped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// session returns the session's interpreter, making it on first use.
func (h *hosted) session() *session.Session {
	if s := h.sess.Load(); s != nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sess.Load(); s != nil {
		return s
	}
	s := session.New(h.opts)
	h.sess.Store(s)
	return s
}

// takeNotRestored returns, once, what a restart could not bring back.
func (h *hosted) takeNotRestored() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.notRestored
	h.notRestored = nil
	return n
}

func (h *hosted) setLast(l transport.LastChunk) {
	h.mu.Lock()
	h.last = l
	h.mu.Unlock()
}

func (h *hosted) lastChunk() *transport.LastChunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last.Seq == 0 {
		return nil
	}
	l := h.last
	return &l
}

// registry holds every session of the server.
type registry struct {
	opts  session.Options
	ttl   time.Duration
	max   int    // sessions held at most
	store *store // nil without a state dir

	mu    sync.Mutex
	byID  map[string]*hosted
	named map[string]*hosted
}

func newRegistry(opts session.Options, ttl time.Duration, maxSessions int) *registry {
	return &registry{opts: opts, ttl: ttl, max: maxSessions, byID: map[string]*hosted{}, named: map[string]*hosted{}}
}

// room reports whether a new session may be made, dropping expired ones
// first when the registry is full. Needs r.mu.
func (r *registry) room() *transport.ErrorInfo {
	if r.max <= 0 || len(r.byID) < r.max {
		return nil
	}
	r.expireLocked(time.Now())
	if len(r.byID) < r.max {
		return nil
	}
	return &transport.ErrorInfo{Kind: transport.KindLimit, Msg: fmt.Sprintf(
		"the server holds its limit of %d sessions — resume one of yours, wait for detached ones to expire, or ask its operator to raise --max-sessions", r.max)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// errBadResume is returned for an unknown id or a wrong secret alike, so a
// peer cannot probe which session ids exist.
var errBadResume = &transport.ErrorInfo{Kind: transport.KindAuth, Msg: "no session with that id and secret (it may have expired) — start a new one"}

// attach finds or makes the session a client asked for and marks it attached.
func (r *registry) attach(m *transport.Msg) (*hosted, bool, *transport.ErrorInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Expired sessions are dropped by the server's expiry loop, not here:
	// walking every session on every attach made connecting cost O(sessions).
	var h *hosted
	resumed := false
	switch {
	case m.Session != "":
		h = r.byID[m.Session]
		if h == nil || subtle.ConstantTimeCompare([]byte(h.secret), []byte(m.Secret)) != 1 || r.expired(h, time.Now()) {
			return nil, false, errBadResume
		}
		resumed = true
	case m.NS != "":
		h = r.named[m.NS]
		if h != nil && r.expired(h, time.Now()) {
			r.dropLocked(h)
			h = nil
		}
		if h != nil {
			resumed = true
		} else {
			var ei *transport.ErrorInfo
			if h, ei = r.newLocked(); ei != nil {
				return nil, false, ei
			}
			h.ns = m.NS
			r.named[m.NS] = h
		}
	default:
		var ei *transport.ErrorInfo
		if h, ei = r.newLocked(); ei != nil {
			return nil, false, ei
		}
	}
	h.mu.Lock()
	h.attached++
	if resumed {
		h.forget = false // someone wants it after all
	}
	h.mu.Unlock()
	return h, resumed, nil
}

func (r *registry) add(h *hosted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[h.id] = h
	if h.ns != "" {
		r.named[h.ns] = h
	}
}

// newLocked makes a session, unless the registry is at its limit (room).
func (r *registry) newLocked() (*hosted, *transport.ErrorInfo) {
	if ei := r.room(); ei != nil {
		return nil, ei
	}
	h := &hosted{id: randomHex(16), secret: randomHex(16), opts: r.opts, created: time.Now()}
	r.byID[h.id] = h
	return h, nil
}

func (r *registry) detach(h *hosted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.mu.Lock()
	h.attached--
	if h.attached == 0 {
		h.detached = time.Now()
	}
	forget := h.attached == 0 && h.forget
	h.mu.Unlock()
	if forget && r.byID[h.id] == h {
		r.dropLocked(h)
	}
}

// expireLocked drops sessions detached for longer than the TTL.
func (r *registry) expireLocked(now time.Time) {
	for _, h := range r.byID {
		if r.expired(h, now) {
			r.dropLocked(h)
		}
	}
}

// dropLocked forgets a session, in memory and in the store.
func (r *registry) dropLocked(h *hosted) {
	h.mu.Lock()
	h.dropped = true
	h.mu.Unlock()
	delete(r.byID, h.id)
	if h.ns != "" && r.named[h.ns] == h {
		delete(r.named, h.ns)
	}
	if r.store != nil {
		_ = r.store.remove(h.id)
	}
}

// expired reports whether h has been detached for longer than the TTL.
func (r *registry) expired(h *hosted, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attached == 0 && !h.detached.IsZero() && now.Sub(h.detached) > r.ttl
}

func (r *registry) expire() {
	r.mu.Lock()
	r.expireLocked(time.Now())
	r.mu.Unlock()
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// list describes every session, oldest first; mine is the asking
// connection's own session (or nil).
func (r *registry) list(mine *hosted) []transport.SessionInfo {
	r.mu.Lock()
	all := make([]*hosted, 0, len(r.byID))
	for _, h := range r.byID {
		all = append(all, h)
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].created.Before(all[j].created) })
	now := time.Now()
	out := make([]transport.SessionInfo, 0, len(all))
	for _, h := range all {
		h.mu.Lock()
		si := transport.SessionInfo{ID: shortID(h.id), NS: h.ns, AgeS: int64(now.Sub(h.created).Seconds()), Attached: h.attached, Mine: h == mine}
		if h.attached == 0 && !h.detached.IsZero() {
			si.IdleS = int64(now.Sub(h.detached).Seconds())
		}
		h.mu.Unlock()
		if sess := h.sess.Load(); sess != nil { // an unused session has neither
			si.Names = len(sess.Names())
			si.Chunks = sess.ChunkCount()
		}
		out = append(out, si)
	}
	return out
}
