package server

import (
	"net"
	"sync"
	"time"
)

// authLimiter counts failed handshakes per peer IP and refuses a peer that
// failed too often within the window.
type authLimiter struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	peers map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

func newAuthLimiter(max int, window time.Duration) *authLimiter {
	return &authLimiter{max: max, window: window, peers: map[string]*failures{}}
}

func peerIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// blocked reports whether addr must wait, and for how long.
func (l *authLimiter) blocked(addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.peers[peerIP(addr)]
	if f == nil {
		return 0, false
	}
	left := l.window - time.Since(f.start)
	if left <= 0 {
		delete(l.peers, peerIP(addr))
		return 0, false
	}
	return left, f.n >= l.max
}

func (l *authLimiter) fail(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	ip := peerIP(addr)
	f := l.peers[ip]
	if f == nil || time.Since(f.start) > l.window {
		if len(l.peers) > 100000 { // bound memory under a flood of distinct peers
			l.peers = map[string]*failures{}
		}
		f = &failures{start: time.Now()}
		l.peers[ip] = f
	}
	f.n++
	return f.n
}
