package testserver

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// StartHoldProxy is a one-connection proxy to target, for plaintext
// servers: it passes the client's bytes, and the server's first frame
// (the challenge), then holds the server's bytes: the client, waiting
// for its welcome, never gets it, while the server serves what the
// client sent. It returns the proxy's address; the test's end closes it.
func StartHoldProxy(tb testing.TB, target string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", target)
		if err != nil {
			cc.Close()
			return
		}
		mu.Lock()
		conns = append(conns, cc, sc)
		mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = io.Copy(sc, cc) }()
		go func() {
			defer wg.Done()
			var h [4]byte // a frame: 4-byte big-endian length, then that many bytes
			if _, err := io.ReadFull(sc, h[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(h[:]))
			if _, err := io.ReadFull(sc, body); err != nil {
				return
			}
			_, _ = cc.Write(append(h[:], body...))
			_, _ = io.Copy(io.Discard, sc) // held: read, never passed on
		}()
	}()
	return ln.Addr().String()
}
