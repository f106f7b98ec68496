package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A private CA verifies the server (no pinning), and --client-ca makes the
// server require a client certificate from that CA.
func TestPrivateCAAndClientCertificates(t *testing.T) {
	ca := newCA(t)
	ts := start(t, false, func(c *server.Config) {
		c.TLS = transport.ServerTLSConfig(ca.issue(t, 2, x509.ExtKeyUsageServerAuth), ca.pool)
	})
	clientCert := ca.issue(t, 3, x509.ExtKeyUsageClientAuth)
	o := ts.opts
	o.Trust = transport.TrustOptions{RootCAs: ca.pool, ClientCert: &clientCert}
	if v := eval(t, ts.dialWith(t, o), "6 * 7"); !v.Equal(transport.Int(42)) {
		t.Fatalf("got %+v", v)
	}
	// (Another name for the same server, so that the TLS session cached by
	// the first dial is not resumed: resumption carries the first client's
	// authentication.)
	_, port, _ := net.SplitHostPort(ts.addr)
	o.Trust.ClientCert = nil
	if _, err := transport.Dial(testCtx(t), net.JoinHostPort("localhost", port), o); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	other := newCA(t)
	o.Trust = transport.TrustOptions{RootCAs: other.pool, ClientCert: &clientCert}
	if _, err := transport.Dial(testCtx(t), ts.addr, o); err == nil {
		t.Fatal("a server certificate from another CA was accepted")
	}
}
