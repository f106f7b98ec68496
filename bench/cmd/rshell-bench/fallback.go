//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/rshell/rshell/server"
	"github.com/rshell/rshell/transport"
)

// runFallbackServer is used only when cmd/rshell does not build: it starts
// the server package the way `rshell serve` does (certificate made in
// <state-dir>/tls, durable sessions in <state-dir>, token file, TLS and
// auth on, default limits except max-conns) and logs the same "addr=" line the harness waits for.
func runFallbackServer(listen, tokenFile, stateDir string, maxConns int, cpuprofile, tracefile string, memory bool) error {
	for _, r := range []struct {
		path  string
		start func(io.Writer) error
		stop  func()
	}{{cpuprofile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {tracefile, trace.Start, trace.Stop}} {
		if r.path == "" {
			continue
		}
		f, err := os.Create(r.path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := r.start(f); err != nil {
			return err
		}
		defer r.stop()
	}
	tok, _, err := transport.EnsureTokenFile(tokenFile)
	if err != nil {
		return err
	}
	cert, err := transport.LoadOrCreateCert(filepath.Join(stateDir, "tls"))
	if err != nil {
		return err
	}
	ln, err := server.Listen(listen)
	if err != nil {
		return err
	}
	cfg := server.Config{
		Token: tok, TLS: transport.ServerTLSConfig(cert, nil), MaxConns: maxConns, StateDir: stateDir, GCHeadroom: server.DefaultGCHeadroom, AllocRate: server.DefaultAllocRate,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if memory {
		cfg.StateDir = ""
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "msg=\"server started (bench fallback, in-process)\" addr=%s\n", ln.Addr())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return nil
	}
}
