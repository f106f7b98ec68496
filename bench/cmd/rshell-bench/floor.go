//go:build linux

package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/hashicorp/yamux"
	"github.com/rshell/rshell/transport"
)

// The floor: the cheapest round trips the machine allows between two
// processes pinned like the rshell client and server, measured in the same
// run. tcp: 16 bytes each way on a TCP connection, Go's net.Conn as
// shipped. yamux: 16 bytes each way on one reused stream of a stock yamux
// v0.1.2 session over plain TCP (the library as shipped: header and body
// in two writes). For reference, rshell's own transport: tcp-quiet, the
// tcp floor with both ends' reads and writes made as raw system calls
// (transport.QuietConn, as rshell's client and server make them), and
// tls-yamux, rshell's own multiplexer (transport.ServerMux/ClientMux:
// yamux's frame format, each frame written in one Write by its sender)
// over TLS 1.3 over quiet connections.

const floorMsg = 16

func stockYamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = io.Discard
	return c
}

// runFloorServer serves the three echo listeners and prints their addresses.
func runFloorServer() error {
	certPEM, keyPEM, err := transport.SelfSignedPEM()
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	tlsCfg := transport.ServerTLSConfig(cert, nil)
	listen := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	lt, err := listen()
	if err != nil {
		return err
	}
	ly, err := listen()
	if err != nil {
		return err
	}
	lm, err := listen()
	if err != nil {
		return err
	}
	lq, err := listen()
	if err != nil {
		return err
	}
	go acceptLoop(lt, func(c net.Conn) { echo(c) })
	go acceptLoop(lq, func(c net.Conn) { echo(transport.QuietConn(c)) })
	go acceptLoop(ly, func(c net.Conn) {
		s, err := yamux.Server(c, stockYamuxConfig())
		if err != nil {
			return
		}
		serveStreams(s, s.Accept)
	})
	go acceptLoop(lm, func(c net.Conn) {
		tc := tls.Server(transport.QuietConn(c), tlsCfg)
		if tc.Handshake() != nil {
			c.Close()
			return
		}
		s := transport.ServerMux(tc, transport.MuxOptions{})
		serveStreams(s, s.Accept)
	})
	fmt.Printf("%s %s %s %s\n", lt.Addr(), ly.Addr(), lm.Addr(), lq.Addr())
	// Serve until the harness closes stdin (or kills the process).
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func acceptLoop(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go handle(c)
	}
}

// serveStreams echoes every stream of session s (yamux's or rshell's).
func serveStreams[S io.ReadWriteCloser](s io.Closer, accept func() (S, error)) {
	defer s.Close()
	for {
		st, err := accept()
		if err != nil {
			return
		}
		go echo(st)
	}
}

func echo(c io.ReadWriteCloser) {
	defer c.Close()
	buf := make([]byte, floorMsg)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// runFloorClient measures n round trips of kind (tcp, yamux, tls-yamux, tcp-quiet).
func runFloorClient(kind, addr string, n int) error {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.(*net.TCPConn).SetNoDelay(true)
	var c io.ReadWriter = raw
	switch kind {
	case "tcp":
	case "tcp-quiet":
		c = transport.QuietConn(raw)
	case "yamux":
		s, err := yamux.Client(raw, stockYamuxConfig())
		if err != nil {
			return err
		}
		defer s.Close()
		if c, err = s.Open(); err != nil {
			return err
		}
	case "tls-yamux":
		tc := tls.Client(transport.QuietConn(raw), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if err := tc.Handshake(); err != nil {
			return err
		}
		s := transport.ClientMux(tc, transport.MuxOptions{})
		defer s.Close()
		if c, err = s.Open(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown floor %q", kind)
	}
	samples, err := timeN(200, n, floorRoundTrip(c))
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(clientResult{Samples: samples})
}

// floorRoundTrip returns one floor round trip on c: floorMsg bytes out,
// the echo read back.
func floorRoundTrip(c io.ReadWriter) func() error {
	buf := make([]byte, floorMsg)
	return func() error {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	}
}
