package transport

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsPair runs one TLS handshake between a server with cert and a client
// trusting per o, over a real loopback connection.
func tlsPair(t *testing.T, cert tls.Certificate, addr string, o TrustOptions) error {
	t.Helper()
	_, err := tlsPairState(t, cert, addr, o)
	return err
}

// tlsPairState is tlsPair, with the client's view of the connection.
func tlsPairState(t *testing.T, cert tls.Certificate, addr string, o TrustOptions) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = tls.Server(c, ServerTLSConfig(cert, nil)).Handshake()
	}()
	defer func() { <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := ClientTLSConfig(addr, o)
	cfg.ClientSessionCache = nil // every handshake is a first one here
	tc := tls.Client(c, cfg)
	err = tc.Handshake()
	return tc.ConnectionState(), err
}

// The key exchange is the post-quantum hybrid the client prefers (see
// keyExchanges), not Go's default, and takes no extra round trip.
func TestKeyExchangeIsPostQuantum(t *testing.T) {
	cs, err := tlsPairState(t, newCert(t), "web1:18812", TrustOptions{TrustNewHost: true, KnownHosts: filepath.Join(t.TempDir(), "known_hosts")})
	if err != nil {
		t.Fatal(err)
	}
	if cs.CurveID != tls.SecP256r1MLKEM768 || cs.HelloRetryRequest {
		t.Fatalf("key exchange %v (hello retry: %v), want %v in one round trip", cs.CurveID, cs.HelloRetryRequest, tls.SecP256r1MLKEM768)
	}
}

func newCert(t *testing.T) tls.Certificate {
	t.Helper()
	c, k, err := SelfSignedPEM()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestPinning(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "cfg", "known_hosts")
	cert, other := newCert(t), newCert(t)
	fp := Fingerprint(cert.Certificate[0])
	const addr = "web1:18812"

	// First contact, not in a terminal: refused, says what to do, pins nothing.
	err := tlsPair(t, cert, addr, TrustOptions{KnownHosts: kh})
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "--trust-new-host") || !strings.Contains(err.Error(), fp) {
		t.Fatalf("first contact: %v", err)
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused host was pinned")
	}
	// First contact in a terminal: the user is asked and says no, then yes.
	var asked string
	no := func(a, f string) bool { asked = a + " " + f; return false }
	if err := tlsPair(t, cert, addr, TrustOptions{KnownHosts: kh, Confirm: no}); !errors.Is(err, ErrUnknownHost) || asked != addr+" "+fp {
		t.Fatalf("declined: %v (asked %q)", err, asked)
	}
	yes := func(string, string) bool { return true }
	if err := tlsPair(t, cert, addr, TrustOptions{KnownHosts: kh, Confirm: yes}); err != nil {
		t.Fatalf("accepted: %v", err)
	}
	st, err := os.Stat(kh)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts: %v %v", st, err)
	}
	// A match needs no question.
	if err := tlsPair(t, cert, addr, TrustOptions{KnownHosts: kh}); err != nil {
		t.Fatalf("match: %v", err)
	}
	// A change is refused loudly, naming the file and line, and
	// --trust-new-host does not override it.
	AddKnownHost(kh, "web2:18812", Fingerprint(other.Certificate[0]))
	for _, trust := range []bool{false, true} {
		err := tlsPair(t, other, addr, TrustOptions{KnownHosts: kh, TrustNewHost: trust, Confirm: yes})
		if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), "remove line 1 of "+kh) {
			t.Fatalf("changed (trust=%v): %v", trust, err)
		}
	}
	// --trust-new-host pins a new host without asking.
	if err := tlsPair(t, cert, "web3:18812", TrustOptions{KnownHosts: kh, TrustNewHost: true}); err != nil {
		t.Fatal(err)
	}
	if got, line, _ := LookupKnownHost(kh, "web3:18812"); got != fp || line != 3 {
		t.Fatalf("web3 pinned as %q at line %d", got, line)
	}
	// --fingerprint: exactly that certificate.
	if err := tlsPair(t, cert, "new:1", TrustOptions{Fingerprint: fp}); err != nil {
		t.Fatalf("fingerprint match: %v", err)
	}
	if err := tlsPair(t, other, "new:1", TrustOptions{Fingerprint: fp}); !errors.Is(err, ErrFingerprintDiff) {
		t.Fatalf("fingerprint mismatch: %v", err)
	}
}

func TestLoadOrCreateCertIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(a.Certificate[0]) != Fingerprint(b.Certificate[0]) {
		t.Fatal("certificate changed between starts")
	}
	if st, _ := os.Stat(filepath.Join(dir, "key.pem")); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
}

func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "token")
	tok, created, err := EnsureTokenFile(path)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("create: %q %v %v", tok, created, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	again, created, err := EnsureTokenFile(path)
	if err != nil || created || string(again) != string(tok) {
		t.Fatalf("reload: %v %v", created, err)
	}
	os.Chmod(path, 0o644)
	if _, err := ReadTokenFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token accepted: %v", err)
	}
}
