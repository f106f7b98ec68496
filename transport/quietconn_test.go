package transport_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/rshell/rshell/transport"
)

// quietPipe is two ends of a real loopback TCP connection, both quiet.
func quietPipe(t testing.TB) (c1, c2 net.Conn, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	a := <-accepted
	if a == nil {
		d.Close()
		return nil, nil, nil, errors.New("accept failed")
	}
	c1, c2 = transport.QuietConn(d), transport.QuietConn(a)
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}

// The quiet connection passes the net.Conn conformance suite: concurrent
// reads and writes, deadlines in the past and future, close unblocking
// readers and writers, large transfers that fill the socket buffers.
func TestQuietConnIsANetConn(t *testing.T) {
	if c1, _, stop, err := quietPipe(t); err == nil {
		_, plain := c1.(*net.TCPConn)
		stop()
		if plain == (runtime.GOOS == "linux") {
			t.Fatalf("QuietConn on %s gave a %T", runtime.GOOS, c1)
		}
	}
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) { return quietPipe(t) })
}

func TestQuietConnErrorsReadAsTCPConnErrors(t *testing.T) {
	c1, c2, stop, err := quietPipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	_ = c1.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = c1.Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Fatalf("error %q: want it worded as a TCP read's", err)
	}

	c2.Close()
	_ = c1.SetReadDeadline(time.Time{})
	if n, err := c1.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want 0, EOF", n, err)
	}
	// Writing to a closed peer fails (EPIPE or ECONNRESET) and does not
	// kill the process with SIGPIPE.
	buf := make([]byte, 64<<10)
	var werr error
	for range 100 {
		if _, werr = c1.Write(buf); werr != nil {
			break
		}
	}
	if werr == nil || !strings.HasPrefix(werr.Error(), "write tcp ") {
		t.Fatalf("writes to a closed peer: %v, want a TCP write error", werr)
	}

	c1.Close()
	if _, err := c1.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v, want net.ErrClosed", err)
	}
}

// A reset connection's read fails with n = 0 (the raw call's -1 is not
// passed on) and the kernel's reason.
func TestQuietConnReadOfAResetConnection(t *testing.T) {
	c1, c2, stop, err := quietPipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := c1.Write([]byte("unread")); err != nil { // unread data makes close send a reset
		t.Fatal(err)
	}
	if l, ok := c2.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	c2.Close()
	_ = c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c1.Read(make([]byte, 8))
	if n != 0 || err == nil || !strings.Contains(err.Error(), "connection reset") || !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Fatalf("read of a reset connection: %d, %v; want 0 and a TCP read error saying reset", n, err)
	}
}

func TestQuietConnReadsAndWritesAllocateNothing(t *testing.T) {
	c1, c2, stop, err := quietPipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	out, in := []byte("ping-pong-16byte"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c1.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c2, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write and read, want 0", allocs)
	}
}
