package transport

import (
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// MuxOptions tune the yamux session on top of an authenticated connection.
type MuxOptions struct {
	KeepAlive    time.Duration // interval of keepalive pings; 0 = 15s
	WriteTimeout time.Duration // a write stuck this long closes the whole session; 0 = 10s
	MaxStreams   int           // streams a peer may have open at once (server side); 0 = 256
	// NoKeepAlive sends no pings (they are still answered): for a server
	// holding many idle connections, where the kernel's TCP keepalive
	// finds dead peers without a goroutine and a timer per connection.
	NoKeepAlive bool

	// Log, if not nil, gets yamux's error lines (which say why a session
	// ended: a keepalive without answer, a read error).
	Log io.Writer
}

func muxConfig(o MuxOptions) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = !o.NoKeepAlive
	cfg.KeepAliveInterval = o.KeepAlive
	if cfg.KeepAliveInterval <= 0 {
		cfg.KeepAliveInterval = 15 * time.Second
	}
	cfg.ConnectionWriteTimeout = o.WriteTimeout
	if cfg.ConnectionWriteTimeout <= 0 {
		cfg.ConnectionWriteTimeout = 10 * time.Second
	}
	cfg.AcceptBacklog = 256
	if o.MaxStreams > 0 {
		cfg.AcceptBacklog = o.MaxStreams
	}
	cfg.MaxStreamWindowSize = 1 << 20
	cfg.StreamOpenTimeout = 30 * time.Second
	cfg.StreamCloseTimeout = 30 * time.Second
	cfg.LogOutput = io.Discard
	if o.Log != nil {
		cfg.LogOutput = o.Log
	}
	return cfg
}

// ServerMux starts the server side of yamux on an authenticated connection.
func ServerMux(conn net.Conn, o MuxOptions) (*yamux.Session, error) {
	return yamux.Server(newCoalescingConn(conn), muxConfig(o))
}

// ClientMux starts the client side of yamux on an authenticated connection.
func ClientMux(conn net.Conn, o MuxOptions) (*yamux.Session, error) {
	return yamux.Client(newCoalescingConn(conn), muxConfig(o))
}
