package testserver

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// CutProxy forwards TCP between clients and a server on loopback until it
// is cut: then it swallows every byte both ways while keeping the TCP
// connections open, as a network gone silent looks to both ends.
type CutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	hold  bool // the server's bytes after its first frame are swallowed (HoldAfterFirstFrame)
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartCutProxy listens on 127.0.0.1 and forwards to target; the test's
// cleanup closes it and every connection it made.
func StartCutProxy(tb testing.TB, target string) *CutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &CutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr is the address clients dial instead of the server's.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

func (p *CutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		hold := p.hold
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(s, c)
		if hold {
			go p.pumpFirstFrame(c, s)
		} else {
			go p.pump(c, s)
		}
	}
}

// pump copies src to dst while the link is up and drops the bytes while
// it is cut.
func (p *CutProxy) pump(dst, src net.Conn) {
	defer p.wg.Done()
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 {
			p.mu.Lock()
			cut := p.cut
			p.mu.Unlock()
			if !cut {
				if _, werr := dst.Write(b[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// HoldAfterFirstFrame makes the connections made from now on pass the
// server's first frame (a 4-byte big-endian length, then that many bytes:
// a plaintext server's challenge) and swallow the rest of what the server
// sends, while the client's bytes still go through: a client waiting for
// its welcome never gets it, while the server serves what it sent.
func (p *CutProxy) HoldAfterFirstFrame() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// pumpFirstFrame copies src's first frame to dst, then swallows src.
func (p *CutProxy) pumpFirstFrame(dst, src net.Conn) {
	defer p.wg.Done()
	var h [4]byte
	if _, err := io.ReadFull(src, h[:]); err != nil {
		dst.Close()
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(h[:]))
	if _, err := io.ReadFull(src, body); err != nil {
		dst.Close()
		return
	}
	_, _ = dst.Write(append(h[:], body...))
	_, _ = io.Copy(io.Discard, src)
	dst.Close()
}

// SetCut cuts the link (true) or lets bytes through again (false).
func (p *CutProxy) SetCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
}

// Restore brings the link back. The connections that lived through the
// cut lost bytes and are closed; new ones are forwarded again.
func (p *CutProxy) Restore() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.cut = false
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *CutProxy) close() {
	p.ln.Close()
	p.Restore()
	p.wg.Wait()
}
