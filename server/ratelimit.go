package server

import (
	"net"
	"sync"
	"time"
)

// peerCounts counts events per peer IP in fixed windows: a peer's window
// starts with its first event and lasts window. The failed-handshake limit
// and the per-peer log limit both count with it.
type peerCounts struct {
	window time.Duration

	mu    sync.Mutex
	peers map[string]*peerCount
}

type peerCount struct {
	start time.Time
	n     int
}

func peerIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// get is addr's count in its current window and the time left in it
// (0, 0 when it has none).
func (p *peerCounts) get(addr string, now time.Time) (n int, left time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip := peerIP(addr)
	c := p.peers[ip]
	if c == nil {
		return 0, 0
	}
	if left = p.window - now.Sub(c.start); left <= 0 {
		delete(p.peers, ip)
		return 0, 0
	}
	return c.n, left
}

// add counts an event of addr at now and returns its count in the current
// window; if that window starts now, also the count of the one that ended.
func (p *peerCounts) add(addr string, now time.Time) (n, before int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip := peerIP(addr)
	c := p.peers[ip]
	if c == nil || now.Sub(c.start) >= p.window {
		if c != nil {
			before = c.n
		}
		if p.peers == nil || len(p.peers) > 100000 { // bound memory under a flood of distinct peers
			p.peers = map[string]*peerCount{}
		}
		c = &peerCount{start: now}
		p.peers[ip] = c
	}
	c.n++
	return c.n, before
}

// ended removes the peers whose window is over and returns their counts.
func (p *peerCounts) ended(now time.Time) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string]int
	for ip, c := range p.peers {
		if now.Sub(c.start) < p.window {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[ip] = c.n
		delete(p.peers, ip)
	}
	return out
}

// authLimiter counts failed handshakes per peer IP and refuses a peer that
// failed too often within the window.
type authLimiter struct {
	max    int
	counts peerCounts
}

func newAuthLimiter(max int, window time.Duration) *authLimiter {
	return &authLimiter{max: max, counts: peerCounts{window: window}}
}

// blocked reports whether addr must wait, and for how long.
func (l *authLimiter) blocked(addr string) (time.Duration, bool) {
	n, left := l.counts.get(addr, time.Now())
	return left, n >= l.max
}

func (l *authLimiter) fail(addr string) int {
	n, _ := l.counts.add(addr, time.Now())
	return n
}
