package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// rawClient is a server session over loopback TCP whose client is played
// by hand: the test writes frames to raw and reads what the session sends.
func rawClient(t *testing.T, cfg Config) (raw net.Conn, s *Session) {
	t.Helper()
	raw, sc := tcpConns(t)
	s = Server(sc, cfg)
	t.Cleanup(func() { s.Close(); waitClosed(t, s) })
	return raw, s
}

// TestProtocolErrors: frames the peer may not send end the session with
// ErrProtocol, and the session closes the connection. Each input is
// written a byte (or, if long, 999 bytes) at a time, so the reader also
// meets split headers.
func TestProtocolErrors(t *testing.T) {
	open := frame(typeWindowUpdate, flagSYN, 1, 0, nil)
	cases := []struct {
		name  string
		input []byte
	}{
		{"bad version", func() []byte { f := frame(typePing, flagSYN, 0, 1, nil); f[0] = 1; return f }()},
		{"unknown type", frame(4, 0, 0, 0, nil)},
		{"type 255", frame(255, flagSYN, 1, 0, nil)},
		{"data frame bigger than the window", frame(typeData, flagSYN, 1, initialWindow+1, nil)},
		{"data beyond the window", append(append(open, frame(typeData, 0, 1, initialWindow, make([]byte, initialWindow))...), frame(typeData, 0, 1, 1, []byte{1})...)},
		{"SYN with the server's parity", frame(typeWindowUpdate, flagSYN, 2, 0, nil)},
		{"SYN on stream 0", frame(typeData, flagSYN, 0, 0, nil)},
		{"second SYN on an open stream", append(open, open...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reasons := make(chan error, 1)
			raw, s := rawClient(t, Config{Window: initialWindow, OnClose: func(err error) { reasons <- err }})
			drained := async(func() error { _, err := io.Copy(io.Discard, raw); return err })
			step := 1
			if len(tc.input) > 1024 {
				step = 999 // still splits headers, in fewer writes
			}
			for i := 0; i < len(tc.input); i += step {
				if _, err := raw.Write(tc.input[i:min(i+step, len(tc.input))]); err != nil {
					break // the session may close before the last byte
				}
			}
			waitClosed(t, s)
			if err := s.Err(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Err() = %v, want ErrProtocol", err)
			}
			if err := recv(t, reasons, "OnClose"); !errors.Is(err, ErrProtocol) {
				t.Fatalf("OnClose(%v), want ErrProtocol", err)
			}
			// The session closed the connection: the peer reads its end.
			recv(t, drained, "peer sees the connection closed")
		})
	}

	t.Run("client refuses an odd SYN", func(t *testing.T) {
		sc, raw := tcpConns(t)
		c := Client(sc, Config{})
		defer waitClosed(t, c)
		defer c.Close()
		if _, err := raw.Write(frame(typeWindowUpdate, flagSYN, 3, 0, nil)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c)
		if err := c.Err(); !errors.Is(err, ErrProtocol) {
			t.Fatalf("Err() = %v, want ErrProtocol", err)
		}
	})
}

// TestPeerEndings: a go-away or a connection closed mid-frame ends the
// session with ErrSessionClosed (Err says so, errors.Is), not ErrProtocol.
// The "EOF in a discarded payload" case (a data frame for no stream, cut
// short) fails: Session.discard returns io.CopyN's bare io.EOF, so Err()
// is io.EOF, which is not ErrSessionClosed.
func TestPeerEndings(t *testing.T) {
	for name, input := range map[string][]byte{
		"go away":                    frame(typeGoAway, 0, 0, 0, nil),
		"EOF between frames":         frame(typePing, flagSYN, 0, 7, nil),
		"EOF in a header":            frame(typePing, flagSYN, 0, 7, nil)[:5],
		"EOF in a payload":           append(frame(typeWindowUpdate, flagSYN, 1, 0, nil), frame(typeData, 0, 1, 100, make([]byte, 10))...),
		"EOF in a discarded payload": frame(typeData, 0, 9, 100, make([]byte, 10)),
		"frames on no stream":        append(frame(typeData, flagFIN, 5, 3, []byte("abc")), frame(typeWindowUpdate, flagRST, 7, 10, nil)...),
	} {
		t.Run(name, func(t *testing.T) {
			raw, s := rawClient(t, Config{})
			drained := async(func() error { _, err := io.Copy(io.Discard, raw); return err })
			if _, err := raw.Write(input); err != nil {
				t.Fatal(err)
			}
			if name != "go away" {
				raw.(*net.TCPConn).CloseWrite()
			}
			waitClosed(t, s)
			if err := s.Err(); !errors.Is(err, ErrSessionClosed) || errors.Is(err, ErrProtocol) {
				t.Fatalf("Err() = %v, want ErrSessionClosed", err)
			}
			raw.Close()
			recv(t, drained, "drain")
		})
	}
}

// TestRawPeerConversation plays a whole yamux client by hand against a
// server session, checking the frames that come back: ACK with the window
// growth, data echoed, ping answered, FIN.
func TestRawPeerConversation(t *testing.T) {
	raw, s := rawClient(t, Config{Window: 512 << 10})
	acceptAll(t, s, echo)
	raw.SetDeadline(time.Now().Add(failSafe))
	// SYN, carried by a data frame with a payload, then FIN.
	write := func(b []byte) {
		t.Helper()
		if _, err := raw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(frame(typeData, flagSYN, 1, 5, []byte("hello")))
	write(frame(typePing, flagSYN, 0, 42, nil))
	var echoed bytes.Buffer
	var sawACK, sawPong, sawFIN, sentFIN bool
	for i := 0; !(sawACK && sawPong && sawFIN); i++ {
		if i > 20 {
			t.Fatalf("frames so far: ACK %v, pong %v, FIN %v, echoed %q", sawACK, sawPong, sawFIN, echoed.String())
		}
		if echoed.Len() == 5 && !sentFIN {
			write(frame(typeWindowUpdate, flagFIN, 1, 0, nil))
			sentFIN = true
		}
		h, p, err := readFrame(raw)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case h.version() != 0:
			t.Fatalf("version %d", h.version())
		case h.typ() == typePing:
			if h.flags() != flagACK || h.length() != 42 {
				t.Fatalf("pong %s, want ACK of ping 42", h)
			}
			sawPong = true
		case h.typ() == typeWindowUpdate && h.flags()&flagACK != 0:
			if h.streamID() != 1 || h.length() != 512<<10-initialWindow || sawACK {
				t.Fatalf("ACK %s: want one, on stream 1, growing the window to 512 KiB", h)
			}
			sawACK = true
		case h.typ() == typeData && h.streamID() == 1:
			if !sawACK {
				t.Fatal("data before the ACK")
			}
			echoed.Write(p)
		case h.typ() == typeWindowUpdate && h.flags() == flagFIN && h.streamID() == 1:
			sawFIN = true
		case h.typ() == typeWindowUpdate && h.flags() == 0:
			// A window update.
		default:
			t.Fatalf("unexpected %s", h)
		}
	}
	if echoed.String() != "hello" {
		t.Fatalf("echoed %q", echoed.String())
	}
}
