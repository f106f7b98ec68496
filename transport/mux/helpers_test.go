package mux

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind: the sessions' readers,
// keepalive tickers, OnClose calls and the tests' own helpers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failSafe bounds every wait in these tests: a wait that reaches it is a
// hang, reported as a failure rather than left to the test binary's timeout.
const failSafe = 10 * time.Second

// tlsConfigs makes, once, a self-signed ECDSA certificate for 127.0.0.1 and
// the TLS 1.3 configurations of both sides that trust it.
var tlsConfigs = sync.OnceValues(func() (*tls.Config, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mux test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	srv := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		MinVersion:   tls.VersionTLS13,
	}
	cli := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	return cli, srv
})

// tcpConns returns both ends of a fresh loopback TCP connection. The
// listener is closed before it returns; the conns when the test ends.
func tcpConns(t testing.TB) (client, server net.Conn) {
	return tcpConnsBuf(t, 0)
}

// tcpConnsBuf is tcpConns with the kernel's send and receive buffers of
// both sockets set to buf bytes (if buf > 0) before the handshake, so
// that a few KiB unread fill the connection: loopback otherwise buffers
// megabytes. (Set after the handshake, a smaller buffer than the window
// already advertised makes the kernel drop segments and stall.)
func tcpConnsBuf(t testing.TB, buf int) (client, server net.Conn) {
	t.Helper()
	control := func(_, _ string, rc syscall.RawConn) error {
		if buf <= 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, opt := range []int{syscall.SO_RCVBUF, syscall.SO_SNDBUF} {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, buf); e != nil {
					serr = e
				}
			}
		})
		return errors.Join(err, serr)
	}
	lc := net.ListenConfig{Control: control}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d := net.Dialer{Control: control}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		client.Close()
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// tlsConns is tcpConns under TLS 1.3, handshake done, the certificate
// verified.
func tlsConns(t testing.TB) (client, server *tls.Conn) {
	t.Helper()
	cc, sc := tcpConns(t)
	ccfg, scfg := tlsConfigs()
	client, server = tls.Client(cc, ccfg), tls.Server(sc, scfg)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if v := client.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %#x, want 1.3", v)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

type transportKind string

const (
	overTCP transportKind = "tcp"
	overTLS transportKind = "tls"
)

var transports = []transportKind{overTCP, overTLS}

func conns(t testing.TB, k transportKind) (net.Conn, net.Conn) {
	if k == overTLS {
		return tlsConns(t)
	}
	return tcpConns(t)
}

// pair starts a client and a server session over a fresh connection of
// kind k; both are closed, and waited for, when the test ends.
func pair(t testing.TB, k transportKind, ccfg, scfg Config) (client, server *Session) {
	t.Helper()
	cc, sc := conns(t, k)
	client, server = Client(cc, ccfg), Server(sc, scfg)
	t.Cleanup(func() {
		client.Close()
		server.Close()
		waitClosed(t, client)
		waitClosed(t, server)
	})
	return client, server
}

// waitClosed waits, at most failSafe, for the session to end.
func waitClosed(t testing.TB, s *Session) {
	t.Helper()
	select {
	case <-s.CloseChan():
	case <-time.After(failSafe):
		t.Fatalf("session did not end within %v", failSafe)
	}
}

// recv waits, at most failSafe, for a value on ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(failSafe):
		t.Fatalf("%s: nothing within %v", what, failSafe)
		panic("unreachable")
	}
}

// async runs f on a goroutine and returns a channel with its result.
func async[T any](f func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return ch
}

type ioResult struct {
	n   int
	err error
}

type readResult struct {
	b   []byte
	err error
}

// acceptAll accepts every stream of s and runs handle on it, on a
// goroutine each, until s ends; the test waits for all of them.
func acceptAll(t testing.TB, s *Session, handle func(*Stream)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := s.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(st)
			}()
		}
	}()
	t.Cleanup(func() {
		s.Close()
		wg.Wait()
	})
}

// echo copies what it reads back, then closes its side.
func echo(st *Stream) {
	_, _ = io.Copy(st, st)
	_ = st.Close()
}

// pattern is n bytes that depend on seed and on their offset, so a
// reordering, a loss or a duplicate of any frame shows.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at offset %d", what, len(got), len(want), i)
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// frame builds one wire frame for tests that play the peer by hand.
func frame(typ uint8, flags uint16, id, length uint32, payload []byte) []byte {
	h := newHeader(typ, flags, id, length)
	return append(h[:], payload...)
}

// readFrame reads one frame (header and, for data, payload) from r.
func readFrame(r io.Reader) (header, []byte, error) {
	var h header
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return h, nil, err
	}
	if h.typ() != typeData || h.length() == 0 {
		return h, nil, nil
	}
	p := make([]byte, h.length())
	_, err := io.ReadFull(r, p)
	return h, p, err
}

// gatedConn can hold every Read (Stop, Resume): a peer whose reader is
// stuck (a stopped process, a busy disk...), which loopback cannot be told
// to do. Close releases a held Read.
type gatedConn struct {
	net.Conn
	mu        sync.Mutex
	open      chan struct{} // closed while reads may go
	closed    chan struct{}
	closeOnce sync.Once
}

func newGatedConn(c net.Conn, stopped bool) *gatedConn {
	g := &gatedConn{Conn: c, open: make(chan struct{}), closed: make(chan struct{})}
	if !stopped {
		close(g.open)
	}
	return g
}

func (g *gatedConn) Stop() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedConn) Resume() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-g.closed:
		return 0, net.ErrClosed
	}
	return g.Conn.Read(p)
}

func (g *gatedConn) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return g.Conn.Close()
}
