package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultHandshakeTimeout bounds TLS plus the hello exchange.
const DefaultHandshakeTimeout = 10 * time.Second

// Handshake errors.
var (
	ErrAuth    = errors.New("authentication failed")
	ErrVersion = errors.New("protocol version mismatch")
)

const handshakeMaxFrame = 64 << 10

// authProof is HMAC-SHA256 keyed by the token over a label and what makes
// the proof good for one connection only: under TLS, keying material
// exported from the TLS session (binding), so the client can send its proof
// without waiting for the server; over plain TCP, the server's nonce.
func authProof(token, nonce, binding []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("rshell-auth-v2\x00"))
	if binding != nil {
		m.Write(binding)
	} else {
		m.Write(nonce)
	}
	return m.Sum(nil)
}

func channelBinding(c net.Conn) []byte {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	b, err := st.ExportKeyingMaterial("rshell-auth-v2", nil, 32)
	if err != nil {
		return nil
	}
	return b
}

// ServerHandshake runs the server's half of the hello on a fresh connection:
// it sends a challenge, reads the hello and checks its version and proof. On
// failure the peer is sent an error frame that names the problem but leaks
// nothing, and the error is returned for the log. token nil means no auth.
// refused, if not nil, is called before the refusal is sent (so a log line
// is written before the peer can react to it).
func ServerHandshake(conn net.Conn, token []byte, info *HostInfo, agent string, timeout time.Duration, refused func(agent string, err error)) (peerAgent string, err error) {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()

	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return "", fmt.Errorf("tls handshake: %w", err)
		}
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	if err := WriteMsg(conn, &Msg{T: TChallenge, Version: ProtocolVersion, Nonce: nonce, Auth: token != nil, Agent: agent}, 0); err != nil {
		return "", fmt.Errorf("send challenge: %w", err)
	}
	hello, err := ReadMsg(conn, handshakeMaxFrame)
	if err != nil {
		return "", fmt.Errorf("read hello: %w", err)
	}
	fail := func(kind, msg string, e error) (string, error) {
		if refused != nil {
			refused(hello.Agent, e)
		}
		_ = WriteMsg(conn, &Msg{T: TError, Err: &ErrorInfo{Kind: kind, Msg: msg}}, 0)
		return hello.Agent, e
	}
	if hello.T != THello {
		return fail(KindProtocol, "expected a hello", fmt.Errorf("%w: expected hello, got %q", ErrMalformed, hello.T))
	}
	if hello.Version != ProtocolVersion {
		msg := fmt.Sprintf("client speaks protocol v%d, this server speaks v%d", hello.Version, ProtocolVersion)
		return fail(KindVersion, msg, fmt.Errorf("%w: %s", ErrVersion, msg))
	}
	if token != nil && !hmac.Equal(hello.Proof, authProof(token, nonce, channelBinding(conn))) {
		return fail(KindAuth, "authentication failed: the token does not match this server's — check --token-file (or $RSHELL_TOKEN_FILE)", ErrAuth)
	}
	if err := WriteMsg(conn, &Msg{T: TWelcome, Version: ProtocolVersion, Info: info}, 0); err != nil {
		return hello.Agent, fmt.Errorf("send welcome: %w", err)
	}
	return hello.Agent, nil
}

// ClientHandshake runs the client's half of the hello and returns the
// server's host info. A refused hello returns a *RemoteError wrapping the
// server's reason; ErrVersion and ErrAuth can be tested with errors.Is.
func ClientHandshake(conn net.Conn, token []byte, agent string, timeout time.Duration) (*HostInfo, error) {
	return clientHandshake(conn, token, agent, timeout, nil)
}

// clientHandshake is ClientHandshake, where under TLS the hello goes out at
// once and then pipelined, if not nil, may write more (the first yamux
// frames) before the server's answer is read: no round trip is spent
// waiting for the challenge, nor for the welcome before attaching. Over
// plain TCP the hello waits for the challenge's nonce.
func clientHandshake(conn net.Conn, token []byte, agent string, timeout time.Duration, pipelined func() error) (*HostInfo, error) {
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()

	binding := channelBinding(conn)
	hello := &Msg{T: THello, Version: ProtocolVersion, Agent: agent}
	// A write that fails is reported only if the server's answer cannot be
	// read: a refusal (a wrong token, too many attempts) says more than the
	// broken pipe it leaves behind.
	var sendErr error
	send := func(nonce []byte) {
		if token != nil {
			hello.Proof = authProof(token, nonce, binding)
		}
		if err := WriteMsg(conn, hello, 0); err != nil {
			sendErr = fmt.Errorf("send hello: %w", err)
			return
		}
		if pipelined != nil {
			sendErr = pipelined()
		}
	}
	if binding != nil {
		send(nil)
	}
	ch, err := ReadMsg(conn, handshakeMaxFrame)
	if err != nil {
		if sendErr != nil {
			return nil, sendErr
		}
		return nil, fmt.Errorf("read challenge: %w", err)
	}
	if ch.T == TError {
		return nil, handshakeErr(ch)
	}
	if ch.T != TChallenge {
		return nil, fmt.Errorf("%w: expected a challenge, got %q — is this an rshell server?", ErrMalformed, ch.T)
	}
	if ch.Version != ProtocolVersion {
		if binding == nil {
			_ = WriteMsg(conn, &Msg{T: THello, Version: ProtocolVersion, Agent: agent}, 0)
		}
		return nil, fmt.Errorf("%w: server speaks protocol v%d, this client speaks v%d — use matching rshell versions", ErrVersion, ch.Version, ProtocolVersion)
	}
	if ch.Auth && token == nil {
		return nil, fmt.Errorf("%w: the server requires a token and none was found — pass --token-file", ErrAuth)
	}
	if binding == nil {
		send(ch.Nonce)
	}
	w, err := ReadMsg(conn, handshakeMaxFrame)
	if err != nil {
		if sendErr != nil {
			return nil, sendErr
		}
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	switch w.T {
	case TWelcome:
		if sendErr != nil {
			return nil, sendErr
		}
		if w.Info == nil {
			w.Info = &HostInfo{}
		}
		return w.Info, nil
	case TError:
		return nil, handshakeErr(w)
	}
	return nil, fmt.Errorf("%w: expected welcome, got %q", ErrMalformed, w.T)
}

func handshakeErr(m *Msg) error {
	re := remoteErr(m).(*RemoteError)
	switch re.Info.Kind {
	case KindAuth:
		return &refusal{re: re, is: ErrAuth}
	case KindVersion:
		return &refusal{re: re, is: ErrVersion}
	}
	return re
}

// refusal is the server's refusal of a handshake: its text is the
// server's reason, and it matches both the sentinel (errors.Is) and the
// RemoteError (errors.As).
type refusal struct {
	re *RemoteError
	is error
}

func (r *refusal) Error() string   { return r.re.Error() }
func (r *refusal) Unwrap() []error { return []error{r.is, r.re} }
