package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// QuietConn returns c with its reads and writes made as raw system calls,
// when c is a TCP connection on Linux; otherwise c itself.
//
// Why: every system call Go makes the ordinary way (read and write on a
// net.Conn among them) wakes the runtime's monitor thread, sysmon, if it
// went to sleep because every P was idle. A server answering one request
// at a time is idle between requests, so each request paid a futex wake
// of sysmon and sysmon's own 20 µs naps after it: two to four extra
// context switches per round trip, a third of a `1+1` round trip on a VM
// where a switch costs microseconds (perf: finish_task_switch under
// do_nanosleep and futex_wait, from sysmon). The socket is non-blocking,
// so a raw read or write never blocks the thread: it returns EAGAIN, and
// the wait for readiness goes through the network poller as before, with
// the connection's deadlines. Any other system call, such as the fsync of
// a durable session, still wakes sysmon, which is what it is there for.
func QuietConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quietConn{TCPConn: tc, rc: rc}
	q.rd.call = q.rd.read
	q.wr.call = q.wr.write
	return q
}

// quietConn is a *net.TCPConn whose Read and Write are raw system calls.
// Its other methods (deadlines, CloseWrite, Close) are the TCPConn's.
type quietConn struct {
	*net.TCPConn
	rc     syscall.RawConn
	rd, wr rawOp
}

// rawOp is one direction's state: the buffer of the call in progress and
// its result, and the callback (bound once, so a call allocates nothing).
type rawOp struct {
	mu    sync.Mutex
	buf   []byte
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool
}

func (o *rawOp) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.buf[0])), uintptr(len(o.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		if e != 0 {
			n = 0 // the raw call returns -1 with an errno
		}
		o.n, o.errno = int(n), e
		return true
	}
}

func (o *rawOp) write(fd uintptr) bool {
	for o.n < len(o.buf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.buf[o.n])), uintptr(len(o.buf)-o.n))
		switch e {
		case 0:
			o.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.errno = e
			return true
		}
	}
	return true
}

func (c *quietConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.rd.do(p, c.rc.Read, "read")
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, c.opError("read", err)
}

func (c *quietConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.wr.do(p, c.rc.Write, "write")
	return n, c.opError("write", err)
}

// do runs o's raw call on p through run (the RawConn's Read or Write,
// which waits in the network poller while the call says EAGAIN), one call
// at a time per direction.
func (o *rawOp) do(p []byte, run func(func(uintptr) bool) error, name string) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf, o.n, o.errno = p, 0, 0
	err := run(o.call)
	o.buf = nil
	if err == nil && o.errno != 0 {
		err = os.NewSyscallError(name, o.errno)
	}
	return o.n, err
}

// opError words an error as the TCPConn's own Read or Write would: the
// raw calls' errors say "raw-read" and "raw-write". nil stays nil.
func (c *quietConn) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
