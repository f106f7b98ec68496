package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rshell/rshell/repl"
	"github.com/rshell/rshell/transport"
	"github.com/spf13/cobra"
)

// listSessions is `rshell serve --list-sessions`: it asks the server
// running at --listen (this machine, same state dir and token file) for
// its sessions, without attaching one of its own.
func listSessions(cmd *cobra.Command, f *serveFlags) error {
	addr := f.listen
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	opts := transport.Options{Plaintext: f.plaintext, Agent: "rshell " + version() + " (list-sessions)", NoAttach: true}
	if !f.noAuth {
		path := f.tokenFile
		if path == "" {
			path = transport.DefaultTokenFile()
		}
		tok, err := transport.ReadTokenFile(path)
		if err != nil {
			return fmt.Errorf("read the server's token: %w", err)
		}
		opts.Token = tok
	}
	if !f.plaintext {
		certFile := f.tlsCert
		if certFile == "" {
			dir := f.stateDir
			if dir == "" || dir == "none" {
				dir = transport.StateDir()
			}
			certFile = filepath.Join(dir, "tls", "cert.pem")
		}
		fp, err := certFingerprint(certFile)
		if err != nil {
			return fmt.Errorf("the server's certificate: %w (is a server running with this --state-dir?)", err)
		}
		opts.Trust = transport.TrustOptions{Fingerprint: fp}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := transport.Dial(ctx, addr, opts)
	if err != nil {
		if errors.Is(err, transport.ErrConnLost) {
			return fmt.Errorf("no rshell server answers at %s: %v", addr, err)
		}
		return err
	}
	defer c.Close()
	list, err := c.Sessions(ctx)
	if err != nil {
		return fmt.Errorf("list the sessions of %s: %w", addr, err)
	}
	fmt.Fprint(cmd.OutOrStdout(), repl.SessionsTable(list))
	return nil
}

// certFingerprint is the fingerprint of the first certificate in a PEM file.
func certFingerprint(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return "", fmt.Errorf("%s holds no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return "", fmt.Errorf("%s: %v", path, err)
			}
			return transport.Fingerprint(b.Bytes), nil
		}
	}
}
