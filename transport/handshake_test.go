package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// runHandshake runs ServerHandshake against a peer that answers the
// challenge with the given raw bytes.
func runHandshake(t testing.TB, token []byte, reply func(ch *Msg) []byte) error {
	return runHandshakeLinger(t, token, reply, true)
}

// runHandshakeLinger, with linger false, hangs up right after the reply,
// so a partial hello ends at once instead of at the handshake deadline.
func runHandshakeLinger(t testing.TB, token []byte, reply func(ch *Msg) []byte, linger bool) error {
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		defer cli.Close()
		ch, err := ReadMsg(cli, 0)
		if err != nil {
			return
		}
		_, _ = cli.Write(reply(ch))
		if linger {
			_, _ = io.Copy(io.Discard, cli)
		}
	}()
	_, err := ServerHandshake(srv, token, &HostInfo{}, "test", time.Second, nil)
	return err
}

func frame(m *Msg) []byte { b, _ := AppendFrame(nil, m); return b }

func TestServerHandshake(t *testing.T) {
	tok := []byte("0123456789abcdef")
	good := func(ch *Msg) []byte {
		return frame(&Msg{T: THello, Version: ProtocolVersion, Proof: authProof(tok, ch.Nonce, nil)})
	}
	if err := runHandshake(t, tok, good); err != nil {
		t.Fatalf("good hello: %v", err)
	}
	wrong := func(ch *Msg) []byte {
		return frame(&Msg{T: THello, Version: ProtocolVersion, Proof: authProof([]byte("wrong-token-0000"), ch.Nonce, nil)})
	}
	if err := runHandshake(t, tok, wrong); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	v2 := func(ch *Msg) []byte { return frame(&Msg{T: THello, Version: 99}) }
	if err := runHandshake(t, tok, v2); !errors.Is(err, ErrVersion) || err.Error() != fmt.Sprintf("protocol version mismatch: client speaks protocol v99, this server speaks v%d", ProtocolVersion) {
		t.Fatalf("version: %v", err)
	}
	garbage := func(*Msg) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }
	if err := runHandshake(t, tok, garbage); err == nil {
		t.Fatal("garbage accepted")
	}
}

// TestProofBoundToConnection: under TLS the hello goes out before the
// challenge, so its proof rests on the TLS session alone: a proof made on
// one connection is refused on another, and a good one passes.
func TestProofBoundToConnection(t *testing.T) {
	tok := []byte("0123456789abcdef")
	cert := newCert(t)
	pair := func() (srv, cli *tls.Conn) {
		srv, cli, _ = tlsConnPair(t, cert)
		return srv, cli
	}
	_, cliA := pair()
	stolen := authProof(tok, nil, channelBinding(cliA))
	for _, tc := range []struct {
		name  string
		proof func(cli *tls.Conn) []byte
		ok    bool
	}{
		{"own", func(cli *tls.Conn) []byte { return authProof(tok, nil, channelBinding(cli)) }, true},
		{"replayed", func(*tls.Conn) []byte { return stolen }, false},
	} {
		srv, cli := pair()
		go func() {
			_ = WriteMsg(cli, &Msg{T: THello, Version: ProtocolVersion, Proof: tc.proof(cli)}, 0)
			_, _ = io.Copy(io.Discard, cli)
		}()
		_, err := ServerHandshake(srv, tok, &HostInfo{}, "test", 5*time.Second, nil)
		if (err == nil) != tc.ok || (!tc.ok && !errors.Is(err, ErrAuth)) {
			t.Errorf("%s proof: %v", tc.name, err)
		}
		srv.Close()
		cli.Close()
	}
}

// tlsConnPair is both ends of a TLS connection over real loopback
// sockets, handshake done; writes counts the server's writes to its
// socket (TLS records, one Write each) from then on.
func tlsConnPair(t *testing.T, cert tls.Certificate) (srv, cli *tls.Conn, writes *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: a}
	srv = tls.Server(counted, ServerTLSConfig(cert, nil))
	cfg := ClientTLSConfig("x:1", TrustOptions{Fingerprint: Fingerprint(cert.Certificate[0])})
	cfg.ClientSessionCache = nil
	cli = tls.Client(b, cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counted.n.Store(0)
	return srv, cli, &counted.n
}

type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestChallengeGoesWithTheAnswer: under TLS the client does not wait for
// the challenge, so the server sends it with its answer to the hello, the
// welcome or the refusal, in one write (one record, one segment, one
// wake-up of the client), and the client reads both in order.
func TestChallengeGoesWithTheAnswer(t *testing.T) {
	tok := []byte("0123456789abcdef")
	cert := newCert(t)
	for _, good := range []bool{true, false} {
		srv, cli, writes := tlsConnPair(t, cert)
		key := tok
		if !good {
			key = []byte("wrong-token-0000")
		}
		got := make(chan error, 1)
		go func() {
			_, err := clientHandshake(cli, key, "test", 5*time.Second, nil)
			got <- err
		}()
		_, err := ServerHandshake(srv, tok, &HostInfo{}, "test", 5*time.Second, nil)
		if cerr := <-got; (err == nil) != good || (cerr == nil) != good || (!good && !errors.Is(cerr, ErrAuth)) {
			t.Fatalf("good=%v: server %v, client %v", good, err, cerr)
		}
		if n := writes.Load(); n != 1 {
			t.Errorf("good=%v: the server wrote %d times after the TLS handshake, want 1", good, n)
		}
		srv.Close()
		cli.Close()
	}
}

func FuzzServerHandshake(f *testing.F) {
	f.Add(frame(&Msg{T: THello, Version: 1, Proof: make([]byte, 32)}))
	f.Add(frame(&Msg{T: THello, Version: 2}))
	f.Add([]byte("\x00\x00\x00\x02\xa0\x00"))
	f.Add([]byte("garbage"))
	tok := []byte("0123456789abcdef")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := runHandshakeLinger(t, tok, func(*Msg) []byte { return b }, false); err == nil {
			t.Fatal("a hello without the token's proof was accepted")
		}
	})
}
