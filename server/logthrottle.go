package server

import (
	"log/slog"
	"time"
)

// Warnings about one peer address (refused connections, bad frames) are
// limited to logBurst per logWindow: a flood of bad connections would
// otherwise cost the server a log line each (formatting and a write) and
// fill the operator's disk. What was held back is counted and reported in
// one line when that peer's window ends.
const (
	logBurst  = 10
	logWindow = time.Minute
)

type logLimiter struct{ counts peerCounts }

func newLogLimiter() *logLimiter { return &logLimiter{counts: peerCounts{window: logWindow}} }

// allow reports whether a warning about addr may be logged at now. When it
// starts a new window for a peer whose last one held lines back, it also
// returns how many.
func (l *logLimiter) allow(addr string, now time.Time) (ok bool, heldBack int) {
	n, before := l.counts.add(addr, now)
	return n <= logBurst, max(0, before-logBurst)
}

// ended removes the peers whose window is over and returns how many lines
// each held back (only those that held some).
func (l *logLimiter) ended(now time.Time) map[string]int {
	var out map[string]int
	for ip, n := range l.counts.ended(now) {
		if n > logBurst {
			if out == nil {
				out = map[string]int{}
			}
			out[ip] = n - logBurst
		}
	}
	return out
}

// warnPeer logs a warning about the peer at addr, within its limit.
func (s *Server) warnPeer(log *slog.Logger, addr, msg string, args ...any) {
	ok, held := s.peerLog.allow(addr, time.Now())
	if held > 0 {
		s.log.Warn("log lines about a peer held back in its last minute", "peer_ip", peerIP(addr), "lines", held)
	}
	if ok {
		log.Warn(msg, args...)
	}
}

// reportHeldBack logs, for every peer whose window ended, how many lines
// were held back (called from expireLoop).
func (s *Server) reportHeldBack() {
	for ip, n := range s.peerLog.ended(time.Now()) {
		s.log.Warn("log lines about a peer held back in its last minute", "peer_ip", ip, "lines", n)
	}
}
