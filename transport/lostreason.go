package transport

import (
	"strings"
	"sync"
)

// muxLog keeps the last error line yamux logged, which is the only place
// it says why a session ended.
type muxLog struct {
	mu   sync.Mutex
	last string
}

func (l *muxLog) Write(p []byte) (int, error) {
	if line := strings.TrimSpace(string(p)); strings.Contains(line, "[ERR]") {
		l.mu.Lock()
		l.last = line
		l.mu.Unlock()
	}
	return len(p), nil
}

// reason turns yamux's last word into words for a user.
func (l *muxLog) reason() string {
	l.mu.Lock()
	last := l.last
	l.mu.Unlock()
	switch {
	case last == "":
		return "the connection closed"
	case strings.Contains(last, "keepalive failed"):
		return "no answer to keepalive pings: the network or the host is down"
	case strings.Contains(last, "connection write timeout"), strings.Contains(last, "i/o timeout"):
		return "a write got no room for too long: the network or the host is stuck"
	}
	if i := strings.Index(last, "yamux: "); i >= 0 {
		last = last[i+len("yamux: "):]
	}
	return "the connection broke (" + last + ")"
}

// LostReason says, once Done is closed, why the connection ended, in
// words for a user: "the connection closed" when the server closed it or
// the connection was reset, else what failed (keepalive, a read error).
func (c *Client) LostReason() string {
	if c.muxLog == nil {
		return "the connection closed"
	}
	return c.muxLog.reason()
}
