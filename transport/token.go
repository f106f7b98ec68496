package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// ConfigDir is rshell's per-user config directory ($XDG_CONFIG_HOME/rshell).
func ConfigDir() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "rshell")
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "rshell")
	}
	return ".rshell"
}

// StateDir is rshell's per-user state directory ($XDG_STATE_HOME/rshell,
// else ~/.local/state/rshell; the config dir's sibling on Windows and macOS).
func StateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rshell")
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "freebsd" {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "state", "rshell")
		}
	}
	return filepath.Join(ConfigDir(), "state")
}

// DefaultTokenFile is where a server keeps its token and where a client on
// the same machine, run by the same user, finds it.
func DefaultTokenFile() string { return filepath.Join(ConfigDir(), "token") }

// DefaultKnownHosts is the client's certificate pin file.
func DefaultKnownHosts() string { return filepath.Join(ConfigDir(), "known_hosts") }

// othersCanRead says a file with mode m holds no secret: its group or
// others may read it (not checked on Windows, whose modes do not say).
func othersCanRead(m os.FileMode) bool {
	return runtime.GOOS != "windows" && m.Perm()&0o077 != 0
}

// ReadTokenFile reads a token. It refuses a file others can read.
func ReadTokenFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if othersCanRead(st.Mode()) {
		return nil, fmt.Errorf("token file %s is readable by others (mode %v) — run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("token file %s holds %d bytes — a token needs at least 16", path, len(b))
	}
	return b, nil
}

// EnsureTokenFile reads the token at path, creating it (0600, 256 random
// bits as hex, directory 0700) when missing. created says which happened.
func EnsureTokenFile(path string) (token []byte, created bool, err error) {
	tok, err := ReadTokenFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return tok, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, err
	}
	tok = []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process made it first
			tok, err = ReadTokenFile(path)
			return tok, false, err
		}
		return nil, false, fmt.Errorf("create token: %w", err)
	}
	_, err = f.Write(append(tok, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return tok, err == nil, err
}
