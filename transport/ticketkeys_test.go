package transport

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func keyBytes(tk *TicketKeys) [][32]byte {
	var ks [][32]byte
	for _, k := range tk.keys {
		ks = append(ks, k.key)
	}
	return ks
}

// wantPrivate fails t unless path is a file of mode 0600.
func wantPrivate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %v, want 0600", path, st.Mode().Perm())
	}
}

// testClock is a clock at 2027-01-15 that a test moves by setting *now.
func testClock() (t0 time.Time, now *time.Time, clock func() time.Time) {
	t0 = time.Unix(1_800_000_000, 0)
	now = new(time.Time)
	*now = t0
	return t0, now, func() time.Time { return *now }
}

func TestTicketKeysKeptInAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls", "ticket-keys")
	tk, err := OpenTicketKeys(path, "sha256:A")
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.keys) != 1 || tk.keys[0].key == [32]byte{} {
		t.Fatalf("a new file holds %d keys (%v), want one random key", len(tk.keys), tk.keys)
	}
	wantPrivate(t, path)
	before, _ := os.ReadFile(path)
	again, err := OpenTicketKeys(path, "sha256:A")
	if err != nil {
		t.Fatal(err)
	}
	if keyBytes(again)[0] != keyBytes(tk)[0] || len(again.keys) != 1 {
		t.Fatal("reopened: a different key")
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("reopening rewrote the file:\n%s\n->\n%s", before, after)
	}
}

func TestTicketKeysRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys")
	t0, now, clock := testClock()
	tk, err := openTicketKeys(path, "sha256:A", clock)
	if err != nil {
		t.Fatal(err)
	}
	first := keyBytes(tk)[0]
	*now = t0.Add(TicketKeyRotation - time.Minute)
	if changed, err := tk.Rotate(); changed || err != nil {
		t.Fatalf("before the rotation is due: changed %v, %v", changed, err)
	}
	*now = t0.Add(TicketKeyRotation)
	if changed, err := tk.Rotate(); !changed || err != nil {
		t.Fatalf("rotation due: changed %v, %v", changed, err)
	}
	ks := keyBytes(tk)
	if len(ks) != 2 || ks[1] != first || ks[0] == first {
		t.Fatal("after a rotation: want a new key first, the old one second")
	}
	// Past the first key's lifetime: it goes, and the second, now older
	// than a rotation, is followed by a new one.
	*now = t0.Add(TicketKeyLifetime)
	if changed, err := tk.Rotate(); !changed || err != nil {
		t.Fatalf("at the first key's end: changed %v, %v", changed, err)
	}
	ks2 := keyBytes(tk)
	if len(ks2) != 2 || ks2[1] != ks[0] {
		t.Fatalf("at the first key's end: %d keys, want the newest two", len(ks2))
	}
	reread, err := openTicketKeys(path, "sha256:A", clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := keyBytes(reread); len(got) != 2 || got[0] != ks2[0] || got[1] != ks2[1] {
		t.Fatal("the file does not hold the rotated keys")
	}
}

// A file made for another certificate is not used: a server whose
// certificate changed does not resume sessions begun with the old one.
func TestTicketKeysBoundToTheCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys")
	a, err := OpenTicketKeys(path, "sha256:A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenTicketKeys(path, "sha256:B")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.keys) != 1 || keyBytes(b)[0] == keyBytes(a)[0] {
		t.Fatal("another certificate's keys were kept")
	}
	if f, _ := os.ReadFile(path); !strings.Contains(string(f), "cert sha256:B\n") {
		t.Fatalf("file:\n%s", f)
	}
}

func TestTicketKeysUnreadableFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys")
	if err := os.WriteFile(path, []byte("cert sha256:A\nkey 12 not-base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := OpenTicketKeys(path, "sha256:A")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2: malformed key") || !strings.Contains(err.Error(), "replaced with new keys") {
		t.Fatalf("got %v, want an error naming the file and its bad line", err)
	}
	if len(tk.keys) != 1 {
		t.Fatalf("%d keys, want a new one", len(tk.keys))
	}
	if again, err := OpenTicketKeys(path, "sha256:A"); err != nil || keyBytes(again)[0] != keyBytes(tk)[0] {
		t.Fatalf("the file was not rewritten with the new key: %v", err)
	}
}

// A client resumes its TLS session with a server restarted with the same
// kept keys: no full handshake, no refusal, no second dial. (The restart:
// the server forgets its keys and loads them from the file again.)
func TestTicketKeysResumeAcrossRestart(t *testing.T) {
	cert := newCert(t)
	fp := Fingerprint(cert.Certificate[0])
	path := filepath.Join(t.TempDir(), "ticket-keys")
	o := Options{Trust: TrustOptions{Fingerprint: fp, SessionCache: tls.NewLRUClientSessionCache(4)}}
	s := newTicketServer(t, cert)
	load := func() {
		tk, err := OpenTicketKeys(path, fp)
		if err != nil {
			t.Fatal(err)
		}
		tk.Apply(s.cfg)
	}
	load()
	if cs := s.dial(t, o); cs.DidResume {
		t.Fatal("first contact resumed")
	}
	if err := <-s.seen; err != nil {
		t.Fatal(err)
	}
	s.cfg.SetSessionTicketKeys([][32]byte{{9}}) // the process ends
	load()                                      // a new one starts
	if cs := s.dial(t, o); !cs.DidResume || cs.CurveID != tls.CurveP256 {
		t.Fatalf("after the restart: resumed %v with %v, want resumed with %v", cs.DidResume, cs.CurveID, tls.CurveP256)
	}
	if err := <-s.seen; err != nil {
		t.Fatalf("the restarted server's handshake: %v", err)
	}
	select {
	case err := <-s.seen:
		t.Fatalf("a second handshake (%v): the client dialled again", err)
	default:
	}

	// Without the file (a new certificate's keys), the same client makes
	// the full handshake, as before kept keys.
	s.cfg.SetSessionTicketKeys([][32]byte{{9}})
	if cs := s.dial(t, o); cs.DidResume {
		t.Fatal("resumed with keys that never sealed its ticket")
	}
}

// Two servers sharing a state dir: the second to rotate takes the keys
// the first wrote instead of overwriting them with its own.
func TestTicketKeysSharedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ticket-keys")
	t0, now, clock := testClock()
	a, err := openTicketKeys(path, "sha256:A", clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openTicketKeys(path, "sha256:A", clock)
	if err != nil {
		t.Fatal(err)
	}
	*now = t0.Add(TicketKeyRotation + time.Second)
	if changed, err := a.Rotate(); !changed || err != nil {
		t.Fatalf("a: changed %v, %v", changed, err)
	}
	*now = (*now).Add(time.Minute)
	if changed, err := b.Rotate(); !changed || err != nil {
		t.Fatalf("b: changed %v, %v", changed, err)
	}
	ka, kb := keyBytes(a), keyBytes(b)
	if len(ka) != 2 || len(kb) != 2 || ka[0] != kb[0] || ka[1] != kb[1] {
		t.Fatalf("a holds %d keys, b %d, or not the same ones", len(ka), len(kb))
	}
	if changed, err := b.Rotate(); changed || err != nil {
		t.Fatalf("b again: changed %v, %v", changed, err)
	}
}

func TestTicketKeysUnwritable(t *testing.T) {
	// The state dir's tls "directory" is a file: not even root can write
	// under it.
	notDir := filepath.Join(t.TempDir(), "tls")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(notDir, "ticket-keys")
	tk, err := OpenTicketKeys(path, "sha256:A")
	if err == nil || !strings.Contains(err.Error(), "cannot write "+path) || !strings.Contains(err.Error(), "after this server restarts") {
		t.Fatalf("got %v, want an error saying the keys cannot be written and what it costs", err)
	}
	if len(tk.keys) != 1 {
		t.Fatalf("%d keys, want one usable key", len(tk.keys))
	}
}

// Keys in a file others could read are not used: new ones replace them,
// in a file only the server's user can read.
func TestTicketKeysReadableByOthersReplaced(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are Unix's")
	}
	path := filepath.Join(t.TempDir(), "ticket-keys")
	old, err := OpenTicketKeys(path, "sha256:A")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := OpenTicketKeys(path, "sha256:A")
	if err == nil || !strings.Contains(err.Error(), "readable by others") || !strings.Contains(err.Error(), "replaced with new keys") {
		t.Fatalf("got %v, want an error saying the file was readable by others and replaced", err)
	}
	if len(tk.keys) != 1 || keyBytes(tk)[0] == keyBytes(old)[0] {
		t.Fatal("the keys others could read are still used")
	}
	wantPrivate(t, path)
}
