package transport

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A server's TLS session-ticket keys, kept in a file so that a restarted
// server still resumes its clients' sessions. With keys that live only in
// memory (Go's default), every client's first reconnect after a restart
// was a full handshake, and a client resuming with the lighter key
// exchange (resumeKeyExchanges) refused it and dialled again.
//
// The file is as secret as the certificate's private key beside it (0600):
// whoever reads it can decrypt the tickets it sealed, which carry the
// resumption secrets of past sessions. It is bound to the certificate: a
// server whose certificate changed starts with new keys, so no client
// resumes a session it began with the old certificate.

const (
	// TicketKeyRotation is how often a new key seals new tickets.
	TicketKeyRotation = 24 * time.Hour
	// TicketKeyLifetime is how long a key still opens the tickets it sealed
	// (Go's limit for a TLS 1.3 ticket, 7 days).
	TicketKeyLifetime = 7 * 24 * time.Hour
)

const ticketKeysHeader = "# rshell TLS session-ticket keys: secret, like key.pem. Delete this file to end every resumable session.\n"

type ticketKey struct {
	created time.Time
	key     [32]byte
}

// TicketKeys is the set of session-ticket keys in one file, newest first.
type TicketKeys struct {
	path, cert string
	now        func() time.Time

	mu   sync.Mutex
	keys []ticketKey
}

// OpenTicketKeys loads the keys in path for the certificate with the given
// fingerprint, makes a new key when the newest is TicketKeyRotation old (or
// there is none, or the file was made for another certificate, cannot be
// read, or others can read it: its keys are then not used), drops keys past
// TicketKeyLifetime, and writes the file back (0600).
// An error says what went wrong (the file could not be read, or written);
// the keys returned are usable all the same.
func OpenTicketKeys(path, certFingerprint string) (*TicketKeys, error) {
	return openTicketKeys(path, certFingerprint, time.Now)
}

func openTicketKeys(path, certFingerprint string, now func() time.Time) (*TicketKeys, error) {
	tk := &TicketKeys{path: path, cert: certFingerprint, now: now}
	var loadErr error
	tk.keys, loadErr = readTicketKeys(path, certFingerprint)
	if _, err := tk.rotate(); err != nil {
		return tk, fmt.Errorf("cannot write %s (%v): the keys live in this process only, and clients will make a full TLS handshake after this server restarts", path, err)
	}
	if loadErr != nil {
		return tk, fmt.Errorf("%s could not be read (%v): replaced with new keys; clients holding a TLS session from before make a full handshake once", path, loadErr)
	}
	return tk, nil
}

// readTicketKeys reads the keys in path for cert: none when there is no
// file. Keys in a file others can read are not used (an error): the file
// is then replaced, 0600, with new ones.
func readTicketKeys(path, cert string) ([]ticketKey, error) {
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if othersCanRead(st.Mode()) {
		return nil, fmt.Errorf("it was readable by others (mode %v)", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseTicketKeys(b, cert)
}

// parseTicketKeys reads the file's lines: "cert FINGERPRINT", then
// "key UNIX-SECONDS BASE64" newest first. Keys made for another certificate
// are not returned.
func parseTicketKeys(b []byte, cert string) ([]ticketKey, error) {
	var keys []ticketKey
	sameCert := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "cert" && len(f) == 2:
			sameCert = f[1] == cert
		case f[0] == "key" && len(f) == 3:
			secs, err := strconv.ParseInt(f[1], 10, 64)
			raw, err2 := base64.RawStdEncoding.DecodeString(f[2])
			if err != nil || err2 != nil || len(raw) != 32 {
				return nil, fmt.Errorf("line %d: malformed key", line)
			}
			k := ticketKey{created: time.Unix(secs, 0)}
			copy(k.key[:], raw)
			keys = append(keys, k)
		default:
			return nil, fmt.Errorf("line %d: unknown line", line)
		}
	}
	if !sameCert {
		return nil, nil
	}
	return keys, nil
}

// Rotate makes a new key when the newest is TicketKeyRotation old and
// drops keys past TicketKeyLifetime, writing the file when anything
// changed. It says whether the keys changed. Keys another server sharing
// the file wrote since, newer than these, are taken instead of making
// more: servers sharing a state dir keep one set of keys.
func (tk *TicketKeys) Rotate() (bool, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	adopted := false
	ks, err := readTicketKeys(tk.path, tk.cert)
	if err == nil && len(ks) > 0 && (len(tk.keys) == 0 || ks[0].created.After(tk.keys[0].created)) {
		tk.keys, adopted = ks, true
	}
	changed, err := tk.rotate()
	return changed || adopted, err
}

func (tk *TicketKeys) rotate() (bool, error) {
	now := tk.now()
	changed := false
	kept := tk.keys[:0:0]
	for _, k := range tk.keys {
		if now.Sub(k.created) < TicketKeyLifetime && !k.created.After(now.Add(time.Minute)) {
			kept = append(kept, k)
		} else {
			changed = true
		}
	}
	if len(kept) == 0 || now.Sub(kept[0].created) >= TicketKeyRotation {
		k := ticketKey{created: now}
		if _, err := rand.Read(k.key[:]); err != nil {
			return false, err
		}
		kept = append([]ticketKey{k}, kept...)
		changed = true
	}
	tk.keys = kept
	if !changed {
		return false, nil
	}
	return true, tk.save()
}

// save writes the keys to a new file renamed over the old one.
func (tk *TicketKeys) save() error {
	var b strings.Builder
	b.WriteString(ticketKeysHeader)
	fmt.Fprintf(&b, "cert %s\n", tk.cert)
	for _, k := range tk.keys {
		fmt.Fprintf(&b, "key %d %s\n", k.created.Unix(), base64.RawStdEncoding.EncodeToString(k.key[:]))
	}
	if err := os.MkdirAll(filepath.Dir(tk.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(tk.path), ".ticket-keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), tk.path)
}

// Apply makes cfg seal new tickets with the newest key and open tickets
// sealed by any of them. Safe while cfg serves connections.
func (tk *TicketKeys) Apply(cfg *tls.Config) {
	tk.mu.Lock()
	keys := make([][32]byte, len(tk.keys))
	for i, k := range tk.keys {
		keys[i] = k.key
	}
	tk.mu.Unlock()
	cfg.SetSessionTicketKeys(keys)
}
