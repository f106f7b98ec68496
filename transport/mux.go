package transport

import (
	"net"
	"time"

	"github.com/rshell/rshell/transport/mux"
)

// MuxOptions tune the stream multiplexer on top of an authenticated
// connection.
type MuxOptions struct {
	KeepAlive    time.Duration // interval of keepalive pings; 0 = 15s
	WriteTimeout time.Duration // a write stuck this long closes the whole session; 0 = 10s
	MaxStreams   int           // streams a peer may have open at once (server side); 0 = 256
	// NoKeepAlive sends no pings (they are still answered): for a server
	// holding many idle connections, where one sweeper pings only silent
	// connections and the kernel's TCP keepalive finds dead peers.
	NoKeepAlive bool
	// Plaintext: the connection is plain TCP (--insecure-plaintext), so
	// reads are buffered; TLS reads whole records and needs no buffer.
	Plaintext bool
	// OnStream, if set, takes each stream the peer opens (on the session's
	// reader goroutine: it must not block); else they wait for Accept.
	OnStream func(*mux.Stream)
	// OnClose, if set, runs once when the session ends, on its reader
	// goroutine as that ends (it may block).
	OnClose func(error)
}

func muxConfig(o MuxOptions) mux.Config {
	cfg := mux.Config{
		KeepAlive:    o.KeepAlive,
		WriteTimeout: o.WriteTimeout,
		MaxStreams:   o.MaxStreams,
		Window:       1 << 20,
		OnStream:     o.OnStream,
		OnClose:      o.OnClose,
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if o.NoKeepAlive {
		cfg.KeepAlive = 0
	}
	if o.Plaintext {
		cfg.ReadBuffer = 4 << 10
	}
	return cfg
}

// ServerMux starts the server side of the multiplexer on an authenticated
// connection.
func ServerMux(conn net.Conn, o MuxOptions) *mux.Session {
	return mux.Server(conn, muxConfig(o))
}

// ClientMux starts the client side of the multiplexer on an authenticated
// connection.
func ClientMux(conn net.Conn, o MuxOptions) *mux.Session {
	return mux.Client(conn, muxConfig(o))
}
