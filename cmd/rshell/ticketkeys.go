package main

import (
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/rshell/rshell/transport"
)

// tlsStateDir is where the server keeps its certificate, key and
// session-ticket keys: the state dir's tls directory (the default state
// dir's with --state-dir none).
func tlsStateDir(f *serveFlags) string {
	dir := f.stateDir
	if dir == "" || dir == "none" {
		dir = transport.StateDir()
	}
	return filepath.Join(dir, "tls")
}

// ticketKeyCheck is how often a running server checks whether its
// session-ticket key is due for rotation.
const ticketKeyCheck = time.Hour

// keepTicketKeys gives tc the session-ticket keys kept in the state dir, so
// that clients resume their TLS sessions across a restart of the server,
// and rotates them while the server runs. The returned func stops the
// rotation. Keys that cannot be written are used all the same, for this
// process's life, with a warning; so are new keys that replaced a file
// that could not be read.
func keepTicketKeys(f *serveFlags, tc *tls.Config, fp string, log *slog.Logger) (stop func()) {
	path := filepath.Join(tlsStateDir(f), "ticket-keys")
	tk, err := transport.OpenTicketKeys(path, fp)
	if err != nil {
		log.Warn("session-ticket keys: "+err.Error(), "path", path)
	}
	tk.Apply(tc)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ticketKeyCheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				changed, err := tk.Rotate()
				if changed {
					tk.Apply(tc)
				}
				if err != nil {
					log.Warn("session-ticket keys: could not write the rotated keys: "+err.Error(), "path", path)
				}
			}
		}
	}()
	return func() { close(done) }
}
