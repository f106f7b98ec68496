package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
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
	_, cliA := tlsConnPair(t, cert)
	stolen := authProof(tok, nil, channelBinding(cliA))
	for _, tc := range []struct {
		name  string
		proof func(cli *tls.Conn) []byte
		ok    bool
	}{
		{"own", func(cli *tls.Conn) []byte { return authProof(tok, nil, channelBinding(cli)) }, true},
		{"replayed", func(*tls.Conn) []byte { return stolen }, false},
	} {
		srv, cli := tlsConnPair(t, cert)
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

// tlsConnPair is both ends of a TLS connection over real loopback sockets
// (the hello and the challenge cross in flight), handshake done.
func tlsConnPair(t *testing.T, cert tls.Certificate) (srv, cli *tls.Conn) {
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
	srv = tls.Server(a, ServerTLSConfig(cert, nil))
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
	return srv, cli
}

// TestChallengeComesFirstUnderTLS: a client that waits for the challenge
// before its hello, as a client of another protocol version may, gets it
// at once under TLS too, and then the version error naming its version.
// (A server that held the challenge for the hello left such a client
// waiting for the handshake deadline, without the error.)
func TestChallengeComesFirstUnderTLS(t *testing.T) {
	srv, cli := tlsConnPair(t, newCert(t))
	defer srv.Close()
	defer cli.Close()
	done := make(chan error, 1)
	go func() {
		_, err := ServerHandshake(srv, []byte("0123456789abcdef"), &HostInfo{}, "test", 5*time.Second, nil)
		done <- err
	}()
	_ = cli.SetDeadline(time.Now().Add(5 * time.Second))
	ch, err := ReadMsg(cli, 0)
	if err != nil || ch.T != TChallenge {
		t.Fatalf("challenge: %v %v", ch, err)
	}
	if err := WriteMsg(cli, &Msg{T: THello, Version: ProtocolVersion + 1}, 0); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMsg(cli, 0)
	if err != nil || m.T != TError || m.Err.Kind != KindVersion || !strings.Contains(m.Err.Msg, fmt.Sprintf("v%d", ProtocolVersion+1)) {
		t.Fatalf("want a version error naming v%d, got %+v %v", ProtocolVersion+1, m, err)
	}
	if err := <-done; !errors.Is(err, ErrVersion) {
		t.Fatalf("server: %v", err)
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
