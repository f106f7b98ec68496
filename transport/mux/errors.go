package mux

import "errors"

var (
	// ErrSessionClosed: the session ended (Close, a broken connection, a
	// protocol error); Session.Err says why.
	ErrSessionClosed = errors.New("mux: session closed")
	// ErrStreamClosed: a write after Close.
	ErrStreamClosed = errors.New("mux: stream closed")
	// ErrStreamReset: the peer reset the stream (or refused to open it).
	ErrStreamReset = errors.New("mux: stream reset by the peer")
	// ErrWriteTimeout: a frame could not be written within the write
	// timeout; the session is closed, so no peer waits on half a frame.
	ErrWriteTimeout = errors.New("mux: connection write timed out")
	// ErrKeepAlive: a keepalive ping got no answer; the session is closed.
	ErrKeepAlive = errors.New("mux: no answer to a keepalive ping")
	// ErrProtocol: the peer broke the framing; the session is closed.
	ErrProtocol = errors.New("mux: protocol error")
	// ErrTimeout is returned by a Read or Write past its deadline, and by
	// a Ping without answer. It is a net.Error with Timeout() true.
	ErrTimeout error = timeoutError{}
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "mux: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
