package transport

import (
	"errors"
	"strings"
	"syscall"

	"github.com/rshell/rshell/transport/mux"
)

// LostReason says, once Done is closed, why the connection ended, in
// words for a user: "the connection closed" when it was closed (by either
// side) or reset, else what failed (keepalive, a stuck write, a read
// error, a protocol error).
func (c *Client) LostReason() string {
	return lostReason(c.mux.Err())
}

func lostReason(err error) string {
	switch {
	case err == nil:
		return "the connection closed"
	case errors.Is(err, mux.ErrKeepAlive):
		return "no answer to keepalive pings: the network or the host is down"
	case errors.Is(err, mux.ErrWriteTimeout):
		return "a write got no room for too long: the network or the host is stuck"
	case errors.Is(err, mux.ErrProtocol):
		return "the server broke the protocol (" + strings.TrimPrefix(err.Error(), "mux: ") + ")"
	case err == mux.ErrSessionClosed, isReset(err):
		return "the connection closed"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return "the connection broke (" + msg + ")"
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
