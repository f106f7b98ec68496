package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
	"github.com/spf13/cobra"
)

type serveFlags struct {
	listen, tokenFile, logFormat, stateDir    string
	tlsCert, tlsKey, clientCA                 string
	quiet, noAuth, plaintext, sandbox         bool
	listSessions                              bool
	maxEvalTime, sessionTTL, shutdownGrace    time.Duration
	handshakeTimeout, keepAlive, writeTimeout time.Duration
	maxSteps                                  uint64
	maxConns, maxStreams, maxFrame, maxDepth  int
	maxSessions                               int
	maxResult, maxOutput                      int
	maxUpload, maxMemoryMiB                   int64
	gcHeadroomMiB                             int64
	allocRateMiB                              int64
}

func newServeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve live Starlark namespaces to rshell clients",
		Long: `serve listens for rshell clients and keeps one Starlark namespace per session.

It is secure by default: TLS 1.3 with a certificate made on first start (clients pin
its fingerprint) and a token file clients must prove they hold. Anyone holding the
token can run anything the server's user can run on this host (that is the point of
a remote shell); use --sandbox for namespaces shared with people trusted less.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:18812", "address to listen on (host:port; ':18812' for every interface)")
	fl.StringVar(&f.tokenFile, "token-file", "", "token file, created 0600 with 256 random bits if missing (default "+transport.DefaultTokenFile()+")")
	fl.BoolVar(&f.noAuth, "no-auth", false, "accept clients without a token (loopback listen addresses only)")
	fl.StringVar(&f.stateDir, "state-dir", "", "directory for durable sessions and the TLS certificate; 'none' keeps sessions in memory only (default "+transport.StateDir()+")")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "use this certificate (PEM) instead of the self-signed one")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the key (PEM) for --tls-cert")
	fl.StringVar(&f.clientCA, "client-ca", "", "require client certificates signed by this CA (PEM)")
	fl.BoolVar(&f.plaintext, "insecure-plaintext", false, "no TLS (loopback listen addresses only)")
	fl.BoolVar(&f.sandbox, "sandbox", false, "no os module, no files, no subprocesses: pure computation")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.BoolVar(&f.quiet, "quiet", false, "log only warnings and errors")
	fl.DurationVar(&f.maxEvalTime, "max-eval-time", 0, "wall time per chunk (0 = no limit)")
	fl.Uint64Var(&f.maxSteps, "max-steps", 0, "Starlark steps per chunk (0 = no limit)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", 24*time.Hour, "how long a detached session waits to be resumed")
	fl.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGINT/SIGTERM, how long running chunks may finish before they are cancelled")
	fl.DurationVar(&f.handshakeTimeout, "handshake-timeout", transport.DefaultHandshakeTimeout, "time a new connection has to finish TLS and the hello")
	fl.DurationVar(&f.keepAlive, "keepalive", 15*time.Second, "ping a connection silent this long; one whose ping goes unanswered for --write-timeout is closed")
	fl.DurationVar(&f.writeTimeout, "write-timeout", 10*time.Second, "a write stuck this long closes the connection (also bounds a keepalive ping's wait)")
	fl.IntVar(&f.maxConns, "max-conns", 1024, "connections served at once")
	fl.IntVar(&f.maxSessions, "max-sessions", 0, "sessions held, attached or detached (0 = 4 × --max-conns, at least 10000)")
	fl.IntVar(&f.maxStreams, "max-streams", 64, "concurrent requests per connection")
	fl.IntVar(&f.maxFrame, "max-frame", transport.DefaultMaxFrame, "bytes in one protocol frame")
	fl.IntVar(&f.maxResult, "max-result", 32<<20, "bytes of one encoded result")
	fl.IntVar(&f.maxDepth, "max-depth", 100, "nesting of a replicated value before it becomes a ref")
	fl.IntVar(&f.maxOutput, "max-output", 1<<20, "print() bytes per chunk before output is truncated")
	fl.Int64Var(&f.maxMemoryMiB, "max-memory", 0, "MiB of memory; running chunks are cancelled as the server nears it (0 = no limit)")
	fl.Int64Var(&f.gcHeadroomMiB, "gc-headroom", server.DefaultGCHeadroom>>20, "MiB the heap may grow by between garbage collections while chunks compete for the CPU: far fewer collections to delay quiet clients, for up to that much more memory while busy (0 = Go's default pacing always)")
	fl.Int64Var(&f.allocRateMiB, "alloc-rate", server.DefaultAllocRate>>20, "MiB a second all sessions' chunks may allocate while they compete for the CPU; a session past it waits, so that big values cannot keep the garbage collector marking while others wait (0 = no limit)")
	fl.Int64Var(&f.maxUpload, "max-upload", 1<<30, "bytes of one uploaded file")
	fl.Bool(sleepWhenIdleFlag, false, "let the Go runtime's monitor thread sleep while the server is idle: ~100 fewer wake-ups a second when idle, ~0.1-0.2 ms more CPU per connect (a server on one CPU, on Linux; elsewhere it always sleeps)")
	fl.BoolVar(&f.listSessions, "list-sessions", false, "list the sessions of the server running at --listen (same --state-dir and --token-file) and exit")
	return cmd
}

// sleepWhenIdleFlag is read only by keepMonitorAwake, through this flag
// set, before the command runs (monitor_linux.go); the command itself has
// nothing to do with it.
const sleepWhenIdleFlag = "sleep-when-idle"

// maxGCHeadroomMiB bounds --gc-headroom: a typo of a few zeros should not
// let a busy server's garbage grow to a terabyte.
const maxGCHeadroomMiB = 16 << 10

// maxAllocRateMiB bounds --alloc-rate: past a few GiB a second it limits
// nothing.
const maxAllocRateMiB = 64 << 10

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(cmd *cobra.Command, f *serveFlags) error {
	if f.listSessions {
		return listSessions(cmd, f)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, not %q", f.logFormat)
	}
	if f.gcHeadroomMiB < 0 || f.gcHeadroomMiB > maxGCHeadroomMiB {
		return fmt.Errorf("--gc-headroom must be between 0 and %d MiB, not %d", maxGCHeadroomMiB, f.gcHeadroomMiB)
	}
	if f.allocRateMiB < 0 || f.allocRateMiB > maxAllocRateMiB {
		return fmt.Errorf("--alloc-rate must be between 0 and %d MiB a second, not %d", maxAllocRateMiB, f.allocRateMiB)
	}
	loopback := isLoopback(f.listen)
	if f.noAuth && !loopback {
		return fmt.Errorf("--no-auth is allowed only on a loopback address (127.0.0.1, ::1, localhost), not %s: anyone who can reach the port could run code as you", f.listen)
	}
	if f.plaintext && !loopback {
		return fmt.Errorf("--insecure-plaintext is allowed only on a loopback address, not %s", f.listen)
	}
	level := slog.LevelInfo
	if f.quiet {
		level = slog.LevelWarn
	}
	out := newBatchedLog(cmd.ErrOrStderr(), logFlushDelay, logBatchMax)
	defer out.Close()
	var h slog.Handler = slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})
	if f.logFormat == "json" {
		h = slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(h)

	cfg := server.Config{
		Logger: log,
		Session: session.Options{
			Sandbox: f.sandbox, MaxSteps: f.maxSteps, MaxEvalTime: f.maxEvalTime,
			MaxResult: f.maxResult, MaxDepth: f.maxDepth, MaxOutput: f.maxOutput,
		},
		SessionTTL: f.sessionTTL, HandshakeTimeout: f.handshakeTimeout,
		MaxConns: f.maxConns, MaxSessions: f.maxSessions, MaxStreams: f.maxStreams, MaxFrame: f.maxFrame, MaxUpload: f.maxUpload,
		KeepAlive: f.keepAlive, WriteTimeout: f.writeTimeout,
		MaxMemory: f.maxMemoryMiB << 20, GCHeadroom: f.gcHeadroomMiB << 20, AllocRate: f.allocRateMiB << 20,
	}
	tokenDesc := "no auth"
	if !f.noAuth {
		path := f.tokenFile
		if path == "" {
			path = transport.DefaultTokenFile()
		}
		tok, created, err := transport.EnsureTokenFile(path)
		if err != nil {
			return err
		}
		cfg.Token = tok
		tokenDesc = "token file " + path
		if created {
			tokenDesc += " (new)"
		}
	}
	tlsDesc := "plaintext"
	if !f.plaintext {
		tc, fp, err := serverTLS(f)
		if err != nil {
			return err
		}
		cfg.TLS = tc
		tlsDesc = "tls " + fp
		defer keepTicketKeys(f, tc, fp, log)()
	}
	ln, err := server.Listen(f.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v", f.listen, err)
	}
	if f.stateDir != "none" {
		cfg.StateDir = f.stateDir
		if cfg.StateDir == "" {
			cfg.StateDir = transport.StateDir()
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	log.Info(fmt.Sprintf("server started on %s (%s, %s)", ln.Addr(), tlsDesc, tokenDesc), "addr", ln.Addr().String())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String(), "grace", f.shutdownGrace)
		ctx, cancel := context.WithTimeout(context.Background(), f.shutdownGrace)
		defer cancel()
		go func() { <-sigs; cancel() }() // a second signal cancels at once
		err := srv.Shutdown(ctx)
		if e := <-errc; !errors.Is(e, server.ErrServerClosed) {
			return e
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return err
		}
		log.Info("server stopped")
		return nil
	}
}

func serverTLS(f *serveFlags) (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	dir := tlsStateDir(f)
	switch {
	case f.tlsCert != "" || f.tlsKey != "":
		if f.tlsCert == "" || f.tlsKey == "" {
			return nil, "", errors.New("--tls-cert and --tls-key go together")
		}
		cert, err = tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, "", fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
	default:
		cert, err = transport.LoadOrCreateCert(dir)
		if err != nil {
			return nil, "", err
		}
	}
	var pool *x509.CertPool
	if f.clientCA != "" {
		pem, err := os.ReadFile(f.clientCA)
		if err != nil {
			return nil, "", fmt.Errorf("read --client-ca: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("--client-ca %s holds no PEM certificate", f.clientCA)
		}
	}
	return transport.ServerTLSConfig(cert, pool), transport.Fingerprint(cert.Certificate[0]), nil
}

// embedded is an in-process server on loopback with a private token and
// certificate, reached through the same transport as a remote one.
type embedded struct {
	Addr        string
	Token       []byte
	Fingerprint string
	srv         *server.Server
	done        chan error
}

// startEmbedded starts the server behind `rshell` with no arguments.
func startEmbedded() (*embedded, error) {
	certPEM, keyPEM, err := transport.SelfSignedPEM()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	tok := []byte(randomToken())
	ln, err := server.Listen("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the embedded server: %w", err)
	}
	srv, err := server.New(server.Config{
		Token: tok, TLS: transport.ServerTLSConfig(cert, nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	e := &embedded{Addr: ln.Addr().String(), Token: tok, Fingerprint: transport.Fingerprint(cert.Certificate[0]), srv: srv, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(ln) }()
	return e, nil
}

// Options returns dial options that reach the embedded server.
func (e *embedded) Options() transport.Options {
	return transport.Options{Token: e.Token, Trust: transport.TrustOptions{Fingerprint: e.Fingerprint}, Agent: "rshell " + version()}
}

func (e *embedded) Close() {
	_ = e.srv.Close()
	<-e.done
}
