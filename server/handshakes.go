package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"
	"time"
)

// handshakeGate bounds how many TLS handshakes do their expensive part at
// once. A storm of new connections then queues instead of taking every CPU
// from the clients already connected. The slot is taken when the
// ClientHello arrives (GetConfigForClient), so a peer that connects and
// sends nothing holds no slot, and given back when that TLS handshake
// ends, however it ends (its context is then done) — or earlier by done.
// Tying the slot to the handshake itself means no caller can leak one: a
// refusal after TLS (rate limit, connection limit) used to keep its slot
// for good, and two of them shut every new client out.
type handshakeGate struct {
	slots   chan struct{}
	wait    time.Duration
	holders sync.Map // net.Conn -> struct{}: connections holding a slot
}

var errHandshakeBusy = errors.New("too many handshakes at once; try again")

func newHandshakeGate(n int, wait time.Duration) *handshakeGate {
	if n <= 0 {
		n = max(2, 2*runtime.GOMAXPROCS(0))
	}
	return &handshakeGate{slots: make(chan struct{}, n), wait: wait}
}

// config returns cfg with the gate on its ClientHello.
func (g *handshakeGate) config(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	next := cfg.GetConfigForClient
	c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
			g.holders.Store(hi.Conn, struct{}{})
			context.AfterFunc(hi.Context(), func() { g.done(hi.Conn) })
		case <-t.C:
			return nil, errHandshakeBusy
		case <-hi.Context().Done():
			return nil, hi.Context().Err()
		}
		if next != nil {
			return next(hi)
		}
		return nil, nil
	}
	return c
}

// done gives back the slot conn holds, if any (at most once per slot).
func (g *handshakeGate) done(conn net.Conn) {
	if _, ok := g.holders.LoadAndDelete(conn); ok {
		<-g.slots
	}
}
