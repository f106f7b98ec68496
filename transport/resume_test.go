package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
)

// ticketServer is a TLS server on loopback that writes one byte after each
// handshake (so the client reads the session ticket that came before it)
// and reports each handshake's outcome.
type ticketServer struct {
	cfg  *tls.Config
	ln   net.Listener
	addr string
	seen chan error // each handshake's error, nil when it succeeded
	done chan struct{}
}

func newTicketServer(t *testing.T, cert tls.Certificate, curves ...tls.CurveID) *ticketServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ticketServer{cfg: ServerTLSConfig(cert, nil), ln: ln, addr: ln.Addr().String(),
		seen: make(chan error, 16), done: make(chan struct{})}
	s.cfg.SetSessionTicketKeys([][32]byte{{1}})
	if curves != nil {
		s.cfg.CurvePreferences = curves
	}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, s.cfg)
			err = tc.Handshake()
			s.seen <- err
			if err == nil {
				_, _ = tc.Write([]byte{1})
				_, _ = io.Copy(io.Discard, tc) // until the client closes
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-s.done })
	return s
}

// dial runs DialTLS (Dial's TLS dial, exported for the benchmark's
// connect floor) to the server and reads its byte; it returns the client's
// view of the connection.
func (s *ticketServer) dial(t *testing.T, o Options) tls.ConnectionState {
	t.Helper()
	conn, err := DialTLS(context.Background(), s.addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return conn.(*tls.Conn).ConnectionState()
}

// A resumed session is resumed with P-256 alone, and no full handshake is
// ever made with it: a server that no longer holds the session (restarted,
// with new ticket keys) refuses the ticket, the client refuses the
// classical-only full handshake that follows and dials again, post-quantum.
func TestResumedSessionKeyExchange(t *testing.T) {
	cert := newCert(t)
	s := newTicketServer(t, cert)
	o := Options{Trust: TrustOptions{Fingerprint: Fingerprint(cert.Certificate[0]), SessionCache: tls.NewLRUClientSessionCache(4)}}

	if cs := s.dial(t, o); cs.DidResume || cs.CurveID != tls.SecP256r1MLKEM768 {
		t.Fatalf("first contact: resumed %v with %v, want a full handshake with %v", cs.DidResume, cs.CurveID, tls.SecP256r1MLKEM768)
	}
	for i := range 2 {
		if cs := s.dial(t, o); !cs.DidResume || cs.CurveID != tls.CurveP256 || cs.HelloRetryRequest {
			t.Fatalf("dial %d with a cached session: resumed %v with %v (hello retry %v), want resumed with %v", i+2, cs.DidResume, cs.CurveID, cs.HelloRetryRequest, tls.CurveP256)
		}
	}
	for range 3 {
		if err := <-s.seen; err != nil {
			t.Fatalf("server: %v", err)
		}
	}

	s.cfg.SetSessionTicketKeys([][32]byte{{2}}) // as a restart makes new ones
	if cs := s.dial(t, o); cs.DidResume || cs.CurveID != tls.SecP256r1MLKEM768 {
		t.Fatalf("after the server's restart: resumed %v with %v, want a full handshake with %v", cs.DidResume, cs.CurveID, tls.SecP256r1MLKEM768)
	}
	if err := <-s.seen; err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("the classical-only full handshake: server saw %v, want the client's refusal", err)
	}
	if err := <-s.seen; err != nil {
		t.Fatalf("the dial after it: %v", err)
	}
	if cs := s.dial(t, o); !cs.DidResume || cs.CurveID != tls.CurveP256 {
		t.Fatalf("then: resumed %v with %v, want resumed again", cs.DidResume, cs.CurveID)
	}
}

// Servers on one host at different ports each resume their own sessions
// from one cache: Go keys it by host name alone.
func TestSessionsCachedPerAddress(t *testing.T) {
	cert := newCert(t)
	a, b := newTicketServer(t, cert), newTicketServer(t, cert)
	b.cfg.SetSessionTicketKeys([][32]byte{{3}})
	o := Options{Trust: TrustOptions{Fingerprint: Fingerprint(cert.Certificate[0]), SessionCache: tls.NewLRUClientSessionCache(4)}}
	a.dial(t, o)
	b.dial(t, o)
	for i, s := range []*ticketServer{a, b, a, b} {
		if cs := s.dial(t, o); !cs.DidResume {
			t.Fatalf("dial %d: not resumed", i)
		}
	}
	for _, s := range []*ticketServer{a, b} {
		for range 3 {
			if err := <-s.seen; err != nil {
				t.Fatalf("%s: a handshake failed: %v", s.addr, err)
			}
		}
	}
}

// A server that offers only P-256 is still reached, and resumed.
func TestClassicalOnlyServer(t *testing.T) {
	cert := newCert(t)
	s := newTicketServer(t, cert, tls.CurveP256)
	o := Options{Trust: TrustOptions{Fingerprint: Fingerprint(cert.Certificate[0]), SessionCache: tls.NewLRUClientSessionCache(4)}}
	if cs := s.dial(t, o); cs.DidResume || cs.CurveID != tls.CurveP256 {
		t.Fatalf("first: resumed %v with %v", cs.DidResume, cs.CurveID)
	}
	if cs := s.dial(t, o); !cs.DidResume {
		t.Fatal("second: not resumed")
	}
}
