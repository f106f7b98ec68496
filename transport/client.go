package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/rshell/rshell/transport/mux"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a client connection.
type Options struct {
	Token            []byte // the shared token; nil when the server runs without auth
	Plaintext        bool   // no TLS (servers started with --insecure-plaintext)
	Trust            TrustOptions
	HandshakeTimeout time.Duration
	Mux              MuxOptions
	Agent            string // this client's name and version, for the server's log
	MaxFrame         int    // 0 = DefaultMaxFrame
	MaxDepth         int    // nesting accepted in a decoded value; 0 = 1000

	// Attach: resume Session with Secret, or join the named namespace NS, or
	// (all empty) start a new session.
	Session, Secret, NS string
	// NoAttach connects without attaching any session: only Ping, HostInfo
	// and Sessions work (for `rshell serve --list-sessions`).
	NoAttach bool

	// CancelGrace bounds the wait for a cancelled chunk's terminal frame;
	// past it the connection is declared lost. 0 = 5s.
	CancelGrace time.Duration

	// First, when set, is the session's first chunk: Dial sends it in the
	// same flight as the hello and the attach, a round trip sooner than
	// an Exec after Dial could (when resuming a session, right after the
	// attach instead: its chunk numbers are known only then). Its
	// deadline is First.Deadline alone, not Dial's context's. Read its
	// outcome with FirstResult, when FirstPending says it was sent (a
	// chunk too big for a frame is not).
	First *EvalRequest
}

// Attachment is what the server said when the client attached.
type Attachment struct {
	Session     string
	Secret      string
	Resumed     bool
	NotRestored []string
	Last        *LastChunk
}

// Client is one connection to one rshell server, attached to one session.
// Eval calls are serialised; side errands (Ping, Names, Get...) run on
// streams of their own and never wait behind a running chunk.
type Client struct {
	addr string
	opts Options
	conn net.Conn
	mux  *mux.Session
	info HostInfo
	att  Attachment

	evalMu sync.Mutex
	eval   *mux.Stream
	evalR  *bufio.Reader
	seq    uint64
	first  uint64 // the seq of Options.First, sent and not yet read (0: none)

	closeOnce sync.Once
}

// Dial connects to addr (host:port), authenticates and attaches a session.
// Errors say what failed and what to do about it.
func Dial(ctx context.Context, addr string, o Options) (*Client, error) {
	if o.Agent == "" {
		o.Agent = "rshell-go"
	}
	if o.CancelGrace <= 0 {
		o.CancelGrace = 5 * time.Second
	}
	cork, conn, err := dialTLS(ctx, addr, o)
	if err != nil {
		return nil, err
	}
	// yamux starts before the server's answer to the hello is read, so the
	// attach rides in the same flight as the hello; its reader waits at a
	// gate until the handshake's frames are read off the connection.
	gated := &gatedConn{Conn: conn, gate: make(chan struct{})}
	mo := o.Mux
	mo.Plaintext = o.Plaintext
	c := &Client{addr: addr, opts: o, conn: conn}
	pipelined := func() error {
		c.mux = ClientMux(gated, mo)
		if o.NoAttach {
			return nil
		}
		if err := c.sendAttach(); err != nil {
			return err
		}
		if o.First != nil && o.Session == "" {
			if o.NS != "" {
				c.seq = seqBase() // as readAttached would
			}
			return c.sendFirst()
		}
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	info, err := clientHandshake(conn, o.Token, o.Agent, o.HandshakeTimeout, pipelined)
	stop()
	close(gated.gate)
	if err != nil {
		err = c.abandonFirst(ctx, fmt.Errorf("connect to %s: %w", addr, err))
		cork.sendHeld() // a last word the handshake wrote (the hello of a client of another version)
		conn.Close()
		if c.mux != nil {
			c.mux.Close()
		}
		return nil, err
	}
	c.info = *info
	if o.NoAttach {
		return c, nil
	}
	if err := c.readAttached(ctx); err != nil {
		err = c.abandonFirst(ctx, err)
		c.Close()
		return nil, err
	}
	if c.first != 0 {
		c.seq = c.first // the chunk in flight, numbered before the attach
	} else if o.First != nil {
		if err := c.sendFirst(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// DialTLS dials addr and runs the TLS handshake as Dial does (the same
// key exchanges, session resumption, pinning and first-flight corking),
// then stops: it speaks nothing of rshell's protocol. It is for measuring
// what a connect costs below rshell's hello (the benchmark's connect
// floor). Without TLS (o.Plaintext) it returns the TCP connection.
func DialTLS(ctx context.Context, addr string, o Options) (net.Conn, error) {
	_, c, err := dialTLS(ctx, addr, o)
	return c, err
}

// dialTLS dials addr and runs the TLS handshake (none with o.Plaintext).
// The connection it returns writes through cork. A cached TLS session the
// server no longer holds (it restarted) costs a second dial: see
// resumeKeyExchanges.
func dialTLS(ctx context.Context, addr string, o Options) (*corkConn, net.Conn, error) {
	cork, conn, err := dialTLSOnce(ctx, addr, o, true)
	if errors.Is(err, errNotResumed) {
		return dialTLSOnce(ctx, addr, o, false)
	}
	return cork, conn, err
}

// dialTLSOnce is dialTLS without the second dial; resume as in
// clientTLSConfig.
func dialTLSOnce(ctx context.Context, addr string, o Options, resume bool) (*corkConn, net.Conn, error) {
	// No TCP keepalive: the multiplexer's pings find a dead server, and
	// its four socket options were on the connect's critical path.
	d := net.Dialer{KeepAlive: -1}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, DialError(addr, err)
	}
	// Go sets TCP_NODELAY on every TCP connection it dials.
	cork := newCorkConn(QuietConn(raw))
	if o.Plaintext {
		return cork, cork, nil
	}
	tc := tls.Client(cork, clientTLSConfig(addr, o.Trust, resume))
	hctx, cancel := context.WithTimeout(ctx, orDefault(o.HandshakeTimeout, DefaultHandshakeTimeout))
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		cork.sendHeld() // the alert saying why (a certificate not the pinned one)
		raw.Close()
		if errors.Is(err, errNotResumed) {
			return nil, nil, errNotResumed
		}
		return nil, nil, tlsError(addr, err)
	}
	return cork, tc, nil
}

// seqBase is a random chunk number in [2^32, 2^52): far from every other
// client's, and exact as a float64 for JSON consumers.
func seqBase() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return 1<<32 + binary.BigEndian.Uint64(b[:])%(1<<52-1<<32)
}

// gatedConn holds yamux's reads until the handshake is done with the
// connection; writes go straight through.
type gatedConn struct {
	net.Conn
	gate chan struct{}
}

// NetConn is the connection it wraps (the multiplexer closes the bottom one
// first).
func (g *gatedConn) NetConn() net.Conn { return g.Conn }

func (g *gatedConn) Read(p []byte) (int, error) {
	<-g.gate
	return g.Conn.Read(p)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// DialError turns a dial failure into a message that says what to do.
func DialError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach %s: connection refused — is 'rshell serve' running there?: %w", addr, ErrConnLost)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("cannot reach %s: timed out — check the address and any firewall: %w", addr, ErrConnLost)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("connect to %s: cancelled: %w", addr, err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot reach %s: unknown host %q — check the name: %w", addr, dnsErr.Name, ErrConnLost)
	}
	return fmt.Errorf("cannot reach %s: %v: %w", addr, err, ErrConnLost)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tlsError(addr string, err error) error {
	switch {
	case errors.Is(err, ErrHostKeyChanged), errors.Is(err, ErrUnknownHost), errors.Is(err, ErrFingerprintDiff):
		return err
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake"), errors.Is(err, io.EOF):
		return fmt.Errorf("TLS handshake with %s failed (%v) — is the server running with --insecure-plaintext, or is this not an rshell server?: %w", addr, err, ErrConnLost)
	}
	return fmt.Errorf("TLS handshake with %s failed: %v: %w", addr, err, ErrConnLost)
}

// sendAttach opens the eval stream and asks for the session.
func (c *Client) sendAttach() error {
	s, err := c.mux.Open()
	if err != nil {
		return err
	}
	c.eval = s
	c.evalR = bufio.NewReaderSize(s, 4<<10)
	return WriteMsg(s, &Msg{T: TAttach, Session: c.opts.Session, Secret: c.opts.Secret, NS: c.opts.NS}, c.opts.MaxFrame)
}

// readAttached reads the answer to sendAttach.
func (c *Client) readAttached(ctx context.Context) error {
	s := c.eval
	stop := context.AfterFunc(ctx, func() { _ = s.SetReadDeadline(time.Now()) })
	defer stop()
	m, err := ReadMsg(c.evalR, c.opts.MaxFrame)
	if err != nil {
		return c.lost(err)
	}
	switch m.T {
	case TAttached:
		c.att = Attachment{Session: m.Session, Secret: m.Secret, Resumed: m.Resumed, NotRestored: m.NotRestored, Last: m.Last}
		if m.Last != nil {
			c.seq = m.Last.Seq
		}
		if c.opts.NS != "" {
			// Clients of a shared namespace number their chunks from a
			// random base each, so the namespace's last chunk, reported on
			// resume, is never mistaken for another client's.
			c.seq = seqBase()
		}
		return nil
	case TError:
		return fmt.Errorf("attach to %s: %w", c.addr, remoteErr(m))
	}
	return fmt.Errorf("attach to %s: %w: unexpected %q", c.addr, ErrMalformed, m.T)
}

// Addr is the address dialed.
func (c *Client) Addr() string { return c.addr }

// Info is the server's host info from the handshake.
func (c *Client) Info() HostInfo { return c.info }

// Attachment says which session the client is attached to.
func (c *Client) Attachment() Attachment { return c.att }

// TLSResumed says whether the connection resumed an earlier TLS session
// (an abbreviated handshake: no certificate, no post-quantum key exchange
// of its own; see resumeKeyExchanges).
func (c *Client) TLSResumed() bool {
	tc, ok := c.conn.(*tls.Conn)
	return ok && tc.ConnectionState().DidResume
}

// Done is closed when the connection is gone.
func (c *Client) Done() <-chan struct{} { return c.mux.CloseChan() }

// Close ends the connection. The server keeps the session for its TTL, so
// a later Dial with the same session id and secret resumes it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.mux != nil {
			c.mux.Close()
		}
		c.conn.Close()
	})
	return nil
}

func (c *Client) lost(err error) error {
	if errors.Is(err, ErrConnLost) {
		return err
	}
	c.Close()
	why := err.Error()
	switch {
	case errors.Is(err, mux.ErrWriteTimeout):
		why = "write timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, mux.ErrSessionClosed), errors.Is(err, mux.ErrStreamClosed), errors.Is(err, mux.ErrStreamReset):
		why = "the server closed the connection"
		if r := c.mux.Err(); errors.Is(r, mux.ErrKeepAlive) || errors.Is(r, mux.ErrWriteTimeout) || errors.Is(r, mux.ErrProtocol) {
			why = lostReason(r)
		}
	case isReset(err):
		why = "connection reset"
	case isTimeout(err):
		why = "no answer in time"
	}
	return fmt.Errorf("lost %s (%s): %w", c.addr, why, ErrConnLost)
}

// EvalRequest is one chunk to run.
type EvalRequest struct {
	Src      string
	File     string        // "" lets the server name it <in[N]>
	Deadline time.Duration // 0 = none (the server's --max-eval-time still applies)
}

// Result is the outcome of a successful chunk.
type Result struct {
	Value Value
	Raw   []byte // the value's encoding as received
	Warn  string // e.g. "not durable: ..."
	// Seq is the chunk's number. It is also set when Exec fails with an
	// error wrapping ErrConnLost after the chunk may have been sent, so a
	// resuming client can compare it with Attachment.Last.Seq.
	Seq uint64
}

// Eval runs src in the remote namespace and returns its value. print()
// output is passed to onOutput as it arrives. A failed chunk returns a
// *RemoteError; a broken connection an error wrapping ErrConnLost.
func (c *Client) Eval(ctx context.Context, src string, onOutput func(string)) (Value, error) {
	r, err := c.Exec(ctx, EvalRequest{Src: src}, onOutput)
	return r.Value, err
}

// Exec runs one chunk. Cancelling ctx sends a cancel frame and still waits,
// at most Options.CancelGrace, for the chunk's terminal frame; a ctx
// deadline is also sent to the server, which enforces it itself.
// An Options.First whose outcome was not read is waited for first, and
// its outcome dropped.
func (c *Client) Exec(ctx context.Context, req EvalRequest, onOutput func(string)) (Result, error) {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	if c.eval == nil {
		return Result{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if c.first != 0 {
		seq := c.first
		c.first = 0
		if r, err := c.await(ctx, seq, nil); errors.Is(err, ErrConnLost) {
			return r, err
		}
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
	}
	m := c.chunkMsg(ctx, req)
	if err := WriteMsg(c.eval, m, c.opts.MaxFrame); err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			return Result{}, err
		}
		return Result{Seq: m.Seq}, c.lost(err)
	}
	return c.await(ctx, m.Seq, onOutput)
}

// chunkMsg numbers req as the next chunk; its deadline is the sooner of
// req's and ctx's.
func (c *Client) chunkMsg(ctx context.Context, req EvalRequest) *Msg {
	c.seq++
	m := &Msg{T: TEval, Seq: c.seq, Src: req.Src, File: req.File}
	dl := req.Deadline
	if t, ok := ctx.Deadline(); ok {
		if rem := time.Until(t); dl == 0 || rem < dl {
			dl = max(rem, time.Millisecond)
		}
	}
	if dl > 0 {
		m.DeadlineMS = max(dl.Milliseconds(), 1)
	}
	return m
}

// await reads chunk seq's frames until its outcome; cancelling ctx sends
// a cancel frame and waits at most Options.CancelGrace more.
func (c *Client) await(ctx context.Context, seq uint64, onOutput func(string)) (Result, error) {
	stream := c.eval
	stop := context.AfterFunc(ctx, func() {
		reason := ""
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = "deadline"
		}
		_ = WriteMsg(stream, &Msg{T: TCancel, Seq: seq, Text: reason}, 0)
		_ = stream.SetReadDeadline(time.Now().Add(c.opts.CancelGrace))
	})
	defer func() {
		if !stop() {
			_ = stream.SetReadDeadline(time.Time{})
		}
	}()
	for {
		f, err := ReadMsg(c.evalR, c.opts.MaxFrame)
		if err != nil {
			if isTimeout(err) && ctx.Err() != nil {
				return Result{Seq: seq}, fmt.Errorf("lost %s (no answer within %s of cancelling the chunk): %w", c.addr, c.opts.CancelGrace, c.lostQuiet())
			}
			return Result{Seq: seq}, c.lost(err)
		}
		if f.Seq != seq && f.T != TError {
			continue // a late frame of an earlier, abandoned chunk
		}
		switch f.T {
		case TOut:
			if onOutput != nil {
				onOutput(f.Text)
			}
		case TResult:
			v, err := DecodeValue(f.Value, c.opts.MaxDepth)
			if err != nil {
				return Result{}, fmt.Errorf("result from %s: %w", c.addr, err)
			}
			return Result{Value: v, Raw: f.Value, Warn: f.Warn, Seq: seq}, nil
		case TError:
			return Result{Seq: seq}, remoteErr(f)
		default:
			return Result{}, c.lost(fmt.Errorf("%w: unexpected %q frame on the eval stream", ErrMalformed, f.T))
		}
	}
}

func (c *Client) lostQuiet() error {
	c.Close()
	return ErrConnLost
}

// errand runs one side request on a stream of its own: it sends req, passes
// every non-terminal frame to each (which may be nil), and returns the
// terminal frame. An error frame comes back as *RemoteError.
func (c *Client) errand(ctx context.Context, req *Msg, terminal string, each func(*Msg) error) (*Msg, error) {
	s, err := c.mux.Open()
	if err != nil {
		return nil, c.lost(err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	if err := WriteMsg(s, req, c.opts.MaxFrame); err != nil {
		return nil, c.errandErr(ctx, err)
	}
	r := bufio.NewReader(s)
	for {
		m, err := ReadMsg(r, c.opts.MaxFrame)
		if err != nil {
			return nil, c.errandErr(ctx, err)
		}
		switch m.T {
		case terminal:
			return m, nil
		case TError:
			return nil, remoteErr(m)
		}
		if each == nil {
			return nil, fmt.Errorf("%s: %w: unexpected %q frame", req.T, ErrMalformed, m.T)
		}
		if err := each(m); err != nil {
			return nil, err
		}
	}
}

func (c *Client) errandErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return c.lost(err)
}

// Ping measures one round trip on a fresh stream.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	if _, err := c.errand(ctx, &Msg{T: TPing}, TPong, nil); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// Complete returns the names and attributes that start with prefix.
func (c *Client) Complete(ctx context.Context, prefix string) ([]string, error) {
	m, err := c.errand(ctx, &Msg{T: TComplete, Prefix: prefix}, TCompletions, nil)
	if err != nil {
		return nil, err
	}
	return m.Names, nil
}

// Names lists the namespace: name, type and a short repr of each global.
func (c *Client) Names(ctx context.Context) ([]NameInfo, error) {
	m, err := c.errand(ctx, &Msg{T: TNames}, TNames, nil)
	if err != nil {
		return nil, err
	}
	return m.Items, nil
}

// Get replicates the value of a global.
func (c *Client) Get(ctx context.Context, name string) (Value, error) {
	m, err := c.errand(ctx, &Msg{T: TGet, Name: name}, TValue, nil)
	if err != nil {
		return Value{}, err
	}
	return DecodeValue(m.Value, c.opts.MaxDepth)
}

// Put binds a global to a copy of v.
func (c *Client) Put(ctx context.Context, name string, v Value) error {
	_, err := c.errand(ctx, &Msg{T: TPut, Name: name, Value: EncodeValue(v)}, TOK, nil)
	return err
}

// EndSession tells the server to drop this connection's session, in memory
// and in its store, once its connections close, instead of keeping it for
// the session TTL so that it can be resumed: for one-shot clients. A named
// namespace is shared and is not ended this way (an error says so).
func (c *Client) EndSession(ctx context.Context) error {
	_, err := c.errand(ctx, &Msg{T: TForget}, TOK, nil)
	return err
}

// Reset clears the namespace.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.errand(ctx, &Msg{T: TReset}, TOK, nil)
	return err
}

// HostInfo asks the server for its host info again.
func (c *Client) HostInfo(ctx context.Context) (HostInfo, error) {
	m, err := c.errand(ctx, &Msg{T: TInfo}, TInfo, nil)
	if err != nil || m.Info == nil {
		return HostInfo{}, err
	}
	return *m.Info, nil
}

// Sessions lists the sessions the server holds.
func (c *Client) Sessions(ctx context.Context) ([]SessionInfo, error) {
	m, err := c.errand(ctx, &Msg{T: TSessions}, TSessions, nil)
	if err != nil {
		return nil, err
	}
	return m.List, nil
}
