package transport

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fingerprint is the pin of a certificate: "sha256:" and the unpadded
// base64 of the SHA-256 of its DER bytes, as ssh shows host keys.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// LoadOrCreateCert loads cert.pem and key.pem from dir, or makes a new ECDSA
// P-256 key and a self-signed certificate there (key 0600) on first start.
func LoadOrCreateCert(dir string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load TLS certificate from %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("create %s: %w", dir, err)
	}
	certPEM, keyPEM, err := SelfSignedPEM()
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write %s: %w", certPath, err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// SelfSignedPEM makes a new key and self-signed certificate, PEM-encoded.
func SelfSignedPEM() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "rshell " + host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{host, "localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// ServerTLSConfig is TLS 1.3 only; clientCAs, when set, requires client certificates.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// Pinning errors.
var (
	ErrUnknownHost     = errors.New("unknown host")
	ErrHostKeyChanged  = errors.New("server certificate changed")
	ErrFingerprintDiff = errors.New("server certificate does not match --fingerprint")
)

// TrustOptions say how a client decides to trust a server certificate.
type TrustOptions struct {
	// RootCAs verifies the server against a private CA instead of pinning.
	RootCAs    *x509.CertPool
	ServerName string
	// Fingerprint, when set, is the only certificate accepted.
	Fingerprint string
	// KnownHosts is the pin file; "" disables it.
	KnownHosts string
	// TrustNewHost pins a host seen for the first time without asking.
	// It never overrides a changed certificate.
	TrustNewHost bool
	// Confirm asks the user about a first contact; nil means refuse.
	Confirm func(addr, fingerprint string) bool
	// ClientCert is presented when the server asks for one.
	ClientCert *tls.Certificate
	// SessionCache keeps TLS sessions for resumption; nil = one shared by
	// the whole process.
	SessionCache tls.ClientSessionCache
}

var sessionCache = tls.NewLRUClientSessionCache(256)

// keyExchanges are the key exchanges the client offers. Go ignores the
// order of the list and sends a key share for the first in its own order,
// X25519MLKEM768 when offered; so that is left out: SecP256r1MLKEM768 is
// post-quantum too, and a full handshake costs less with it, since Go's
// P-256 is faster than its X25519 (a key pair and a shared secret in
// 55 µs, against 84 µs, on the benchmark VM) and each side does both on
// the connection's critical path (BenchmarkConnectFirstEval, six
// alternating runs: median 1.25 → 1.15 ms). Every rshell server (Go 1.26)
// supports it; P-256 alone is there for a peer that does not.
var keyExchanges = []tls.CurveID{tls.SecP256r1MLKEM768, tls.CurveP256}

// resumeKeyExchanges are offered instead when a TLS session with the
// server is cached: Go resumes TLS 1.3 only with a fresh key exchange, and
// the post-quantum half of it was most of a resumed handshake's cost
// (BenchmarkConnectFirstChunk: 1.19–1.29 → 0.76–0.81 ms). The resumed
// keys mix that P-256 secret with the cached session's, itself made by a
// post-quantum handshake, so a recording of the connection stays beyond
// a quantum computer unless the server's session-ticket key is taken too.
// A server that does not resume the session gets no classical-only full
// handshake out of it: the client refuses it (errNotResumed) and dials
// again offering keyExchanges.
var resumeKeyExchanges = []tls.CurveID{tls.CurveP256}

// errNotResumed refuses a full handshake made with resumeKeyExchanges.
var errNotResumed = errors.New("the server did not resume the TLS session offered with a classical key exchange")

// ClientTLSConfig returns the TLS config for dialing addr (host:port). It
// offers keyExchanges even for a session it may resume: Dial offers
// resumeKeyExchanges then, and dials again if the server does not resume.
func ClientTLSConfig(addr string, o TrustOptions) *tls.Config {
	return clientTLSConfig(addr, o, false)
}

// clientTLSConfig is ClientTLSConfig; with resume, a config for a server
// whose session is cached offers resumeKeyExchanges and refuses a full
// handshake (errNotResumed).
func clientTLSConfig(addr string, o TrustOptions, resume bool) *tls.Config {
	cache := o.SessionCache
	if cache == nil {
		cache = sessionCache
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ClientSessionCache: addrCache{cache, addr},
		CurvePreferences:   keyExchanges,
	}
	if o.ClientCert != nil {
		c.Certificates = []tls.Certificate{*o.ClientCert}
	}
	if o.RootCAs != nil && o.Fingerprint == "" {
		c.RootCAs = o.RootCAs
		c.ServerName = o.ServerName
		if c.ServerName == "" {
			c.ServerName = hostOnly(addr)
		}
	} else {
		c.InsecureSkipVerify = true // verified by the pin below, not by a CA
		c.ServerName = hostOnly(addr)
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			if cs.DidResume {
				return nil // resumed sessions were verified when first made
			}
			return verifyPin(addr, Fingerprint(cs.PeerCertificates[0].Raw), o)
		}
	}
	if resume {
		if s, ok := c.ClientSessionCache.Get(c.ServerName); ok && s != nil {
			c.CurvePreferences = resumeKeyExchanges
			pin := c.VerifyConnection
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if !cs.DidResume {
					return errNotResumed
				}
				if pin != nil {
					return pin(cs)
				}
				return nil
			}
		}
	}
	return c
}

// addrCache keys a client session cache by the server's address as well as
// by its name, which Go uses alone: servers on one host at different ports
// would otherwise be offered each other's tickets, and refuse them.
type addrCache struct {
	tls.ClientSessionCache
	addr string
}

func (a addrCache) Get(key string) (*tls.ClientSessionState, bool) {
	return a.ClientSessionCache.Get(a.addr + " " + key)
}

func (a addrCache) Put(key string, cs *tls.ClientSessionState) {
	a.ClientSessionCache.Put(a.addr+" "+key, cs)
}

func hostOnly(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 && !strings.Contains(addr[i:], "]") {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

var knownHostsMu sync.Mutex

func verifyPin(addr, fp string, o TrustOptions) error {
	if o.Fingerprint != "" {
		if fp != o.Fingerprint {
			return fmt.Errorf("%w: %s presented %s, expected %s", ErrFingerprintDiff, addr, fp, o.Fingerprint)
		}
		return nil
	}
	if o.KnownHosts == "" {
		if o.TrustNewHost {
			return nil
		}
		return fmt.Errorf("%w: %s (certificate %s) — pass --fingerprint or --trust-new-host", ErrUnknownHost, addr, fp)
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	pinned, line, err := LookupKnownHost(o.KnownHosts, addr)
	if err != nil {
		return err
	}
	switch {
	case line > 0 && pinned == fp:
		return nil
	case line > 0:
		return fmt.Errorf("%w: WARNING: the certificate of %s is not the one pinned — someone may be intercepting the connection, or the server was reinstalled.\n  pinned:    %s\n  presented: %s\nIf the change is expected, remove line %d of %s and connect again",
			ErrHostKeyChanged, addr, pinned, fp, line, o.KnownHosts)
	}
	if !o.TrustNewHost && (o.Confirm == nil || !o.Confirm(addr, fp)) {
		return fmt.Errorf("%w: first contact with %s (certificate %s) — pass --trust-new-host, or --fingerprint after checking it on the server", ErrUnknownHost, addr, fp)
	}
	return AddKnownHost(o.KnownHosts, addr, fp)
}

// LookupKnownHost returns the pinned fingerprint of addr and its line
// number (1-based), or line 0 when addr is not pinned.
func LookupKnownHost(path, addr string) (fp string, line int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read known hosts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == addr {
			return fields[1], n, nil
		}
	}
	return "", 0, sc.Err()
}

// AddKnownHost appends a pin to the known hosts file (0600, directory 0700).
func AddKnownHost(path, addr, fp string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pin %s: %w", addr, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pin %s: %w", addr, err)
	}
	_, err = fmt.Fprintf(f, "%s %s\n", addr, fp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
