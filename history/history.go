package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// DefaultMaxEntries is the cap used when Options.MaxEntries is not positive.
const DefaultMaxEntries = 10000

const (
	dirPerm  fs.FileMode = 0o700
	filePerm fs.FileMode = 0o600
)

// ErrClosed is returned by operations on a closed History.
var ErrClosed = errors.New("history: closed")

// Entry is one recorded chunk of input.
type Entry struct {
	Time time.Time
	Host string
	// Text is the chunk exactly as submitted; it may span several lines.
	Text string
}

// Options configures a History.
type Options struct {
	// MaxEntries caps the number of entries kept in the file and in memory.
	// Zero or negative means DefaultMaxEntries. The file may temporarily
	// hold up to 1.25×MaxEntries entries before it is compacted.
	MaxEntries int
}

// record is the on-disk JSON form of an Entry.
type record struct {
	T    string `json:"t"`
	Host string `json:"host"`
	Text string `json:"text"`
}

// History is an open history file. It is safe for concurrent use.
type History struct {
	mu      sync.Mutex
	path    string
	max     int
	host    string
	lock    *flock.Flock
	entries []Entry
	closed  bool

	// What is known about the file, used to decide when to compact without
	// re-reading it all on every append: the file identity at the last
	// scan, the number of bytes scanned, and how many lines they contain.
	known  fs.FileInfo
	offset int64
	lines  int
}

// DefaultPath returns the default history file location:
// $XDG_STATE_HOME/rshell/history if XDG_STATE_HOME is set to an absolute
// path, otherwise ~/.local/state/rshell/history (on Windows,
// rshell\history under os.UserConfigDir).
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "rshell", "history"), nil
	}
	if runtime.GOOS == "windows" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("history: default path: %w", err)
		}
		return filepath.Join(d, "rshell", "history"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("history: default path: %w", err)
	}
	return filepath.Join(home, ".local", "state", "rshell", "history"), nil
}

// Open opens (creating if needed) the history file at path and loads its
// entries. Missing directories are created with mode 0700 and the file with
// mode 0600; an existing file with group or other permission bits is
// tightened to at most 0600.
func Open(path string, opts Options) (*History, error) {
	if path == "" {
		return nil, errors.New("history: empty path")
	}
	maxEntries := opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		err = f.Chmod(fi.Mode().Perm() &^ 0o077)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	host, _ := os.Hostname()
	h := &History{
		path: path,
		max:  maxEntries,
		host: host,
		lock: flock.New(path+".lock", flock.SetPermissions(filePerm)),
	}
	if err := h.load(); err != nil {
		return nil, err
	}
	return h, nil
}

// Path returns the history file path.
func (h *History) Path() string { return h.path }

// Append records e. Chunks starting with a space, empty or whitespace-only
// chunks, and a chunk whose text equals the previous entry in memory are
// silently not recorded (nil is returned). A zero Time is replaced by the
// current time and an empty Host by the local host name.
func (h *History) Append(e Entry) error {
	if strings.HasPrefix(e.Text, " ") || strings.TrimSpace(e.Text) == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if n := len(h.entries); n > 0 && h.entries[n-1].Text == e.Text {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Host == "" {
		e.Host = h.host
	}
	rec, err := encode(e)
	if err != nil {
		return err
	}
	if err := h.lock.Lock(); err != nil {
		return fmt.Errorf("history: lock: %w", err)
	}
	defer h.lock.Unlock()

	if err := h.appendLocked(rec); err != nil {
		return err
	}
	// Keep the decoded form (e.g. the time without its monotonic reading)
	// so memory matches what a later load would produce.
	if de, ok := decode(bytes.TrimSuffix(rec, []byte("\n"))); ok {
		e = de
	}
	h.entries = append(h.entries, e)
	h.trim()
	if h.lines > h.limit() {
		return h.compactLocked()
	}
	return nil
}

// appendLocked writes rec to the file as one write. The caller holds the
// exclusive file lock.
func (h *History) appendLocked(rec []byte) error {
	f, err := os.OpenFile(h.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	size := fi.Size()
	if h.known == nil || !os.SameFile(h.known, fi) || size < h.offset {
		// Replaced (compacted by another shell) or truncated: rescan.
		h.offset, h.lines = 0, 0
	}
	if size > h.offset {
		n, err := countLines(io.NewSectionReader(f, h.offset, size-h.offset))
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		h.lines += n
		h.offset = size
	}
	if size > 0 {
		// A torn last record (crash mid-write) has no newline; terminate it
		// so this record is not glued onto it. Still a single write.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if last[0] != '\n' {
			rec = append([]byte{'\n'}, rec...)
			h.lines++
		}
	}
	n, err := f.Write(rec)
	h.offset += int64(n)
	if err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	h.lines++
	h.known = fi
	return nil
}

// compactLocked rewrites the file keeping the newest h.max entries. The
// caller holds the exclusive file lock.
func (h *History) compactLocked() error {
	f, err := os.Open(h.path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	entries, _, err := parse(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if len(entries) > h.max {
		entries = entries[len(entries)-h.max:]
	}
	var buf bytes.Buffer
	for _, e := range entries {
		rec, err := encode(e)
		if err != nil {
			return err
		}
		buf.Write(rec)
	}
	dir := filepath.Dir(h.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(h.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("history: compact: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(filePerm); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("history: compact: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("history: compact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("history: compact: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("history: compact: %w", err)
	}
	if err := os.Rename(tmpName, h.path); err != nil {
		return fmt.Errorf("history: compact: %w", err)
	}
	ok = true
	syncDir(dir)
	fi, err := os.Stat(h.path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	h.known, h.offset, h.lines = fi, fi.Size(), len(entries)
	return nil
}

// syncDir makes a rename durable where the platform supports it.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Reload re-reads the file, picking up entries other shells appended. The
// in-memory entries are replaced by the file's contents.
func (h *History) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	return h.load()
}

// load reads the whole file under a shared lock. The caller holds h.mu.
func (h *History) load() error {
	if err := h.lock.RLock(); err != nil {
		return fmt.Errorf("history: lock: %w", err)
	}
	defer h.lock.Unlock()
	f, err := os.Open(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		h.entries, h.known, h.offset, h.lines = nil, nil, 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	entries, lines, err := parse(io.LimitReader(f, fi.Size()))
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	h.entries = entries
	h.trim()
	h.known, h.offset, h.lines = fi, fi.Size(), lines
	return nil
}

// Entries returns a copy of the entries in memory, oldest first: what was
// loaded plus what this History appended.
func (h *History) Entries() []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Entry(nil), h.entries...)
}

// Search returns the entries whose text contains text, oldest first.
func (h *History) Search(text string) []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Entry
	for _, e := range h.entries {
		if strings.Contains(e.Text, text) {
			out = append(out, e)
		}
	}
	return out
}

// Last returns the newest n entries, oldest first.
func (h *History) Last(n int) []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n <= 0 {
		return nil
	}
	if n > len(h.entries) {
		n = len(h.entries)
	}
	return append([]Entry(nil), h.entries[len(h.entries)-n:]...)
}

// Close releases the History. Further Append and Reload calls return
// ErrClosed; Close is idempotent.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	return h.lock.Close()
}

func (h *History) limit() int { return h.max + h.max/4 }

// trim keeps at most h.max entries in memory.
func (h *History) trim() {
	if n := len(h.entries); n > h.max {
		h.entries = h.entries[n-h.max:]
	}
}

// encode returns the JSON line for e, newline included.
func encode(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(record{T: e.Time.Format(time.RFC3339Nano), Host: e.Host, Text: e.Text})
	if err != nil {
		return nil, fmt.Errorf("history: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// decode parses one line; ok is false for a corrupt line.
func decode(line []byte) (Entry, bool) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil || r.Text == "" {
		return Entry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, r.T)
	if err != nil {
		return Entry{}, false
	}
	return Entry{Time: t, Host: r.Host, Text: r.Text}, true
}

// parse decodes all valid lines of r, skipping corrupt ones, and returns
// them with the number of newline-terminated lines read.
func parse(r io.Reader) ([]Entry, int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var entries []Entry
	lines := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lines++
		}
		if l := bytes.TrimSpace(line); len(l) > 0 {
			if e, ok := decode(l); ok {
				entries = append(entries, e)
			}
		}
		if err == io.EOF {
			return entries, lines, nil
		}
		if err != nil {
			return entries, lines, err
		}
	}
}

// countLines counts newline bytes in r.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 32<<10)
	n := 0
	for {
		m, err := r.Read(buf)
		n += bytes.Count(buf[:m], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
