package history

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func openT(t *testing.T, path string, opts Options) *History {
	t.Helper()
	h, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func appendT(t *testing.T, h *History, text string) {
	t.Helper()
	if err := h.Append(Entry{Text: text}); err != nil {
		t.Fatalf("Append(%q): %v", text, err)
	}
}

func texts(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Text
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fileLines returns the raw lines of the file at path.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestRoundTripMultiLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "rshell")
	path := filepath.Join(dir, "history")
	h, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	want := []Entry{
		{Time: t0, Host: "alpha", Text: "for i in 1 2 3\ndo\n  echo \"$i\"\ndone"},
		{Time: t0.Add(time.Second), Host: "beta", Text: "x := `raw\r\n\tstring` // <&> \u2028 ünïcödé"},
		{Time: t0.Add(2 * time.Second), Host: "alpha", Text: "trailing newline\n\n"},
	}
	for _, e := range want {
		if err := h.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	if err := h.Append(Entry{Text: "defaults filled"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(fileLines(t, path)); n != 4 {
		t.Fatalf("file has %d lines, want 4 (one per entry)", n)
	}

	h2 := openT(t, path, Options{})
	got := h2.Entries()
	if len(got) != 4 {
		t.Fatalf("got %d entries, want 4: %q", len(got), texts(got))
	}
	for i, w := range want {
		g := got[i]
		if g.Text != w.Text || g.Host != w.Host || !g.Time.Equal(w.Time) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	last := got[3]
	host, _ := os.Hostname()
	if last.Text != "defaults filled" || last.Host != host {
		t.Errorf("defaults entry = %+v, want host %q", last, host)
	}
	if last.Time.Before(before.Add(-time.Second)) || last.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("default time %v not near now", last.Time)
	}

	if runtime.GOOS == "windows" {
		t.Log("skipping permission checks on windows")
		return
	}
	checkPerm(t, dir, 0o700)
	checkPerm(t, path, 0o600)
	checkPerm(t, path+".lock", 0o600)
}

func checkPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&^want != 0 {
		t.Errorf("%s mode %v, want at most %v", path, got, want)
	} else if got != want {
		// A restrictive umask may narrow the mode further; that's fine.
		t.Logf("%s mode %v (narrower than %v)", path, got, want)
	}
}

func TestTightensOpenFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	path := filepath.Join(t.TempDir(), "history")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openT(t, path, Options{})
	checkPerm(t, path, 0o600)
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// Never widened.
	path2 := filepath.Join(t.TempDir(), "history")
	if err := os.WriteFile(path2, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	h, err := Open(path2, Options{})
	if err == nil {
		h.Close()
	}
	fi, _ = os.Stat(path2)
	if fi.Mode().Perm() != 0o400 {
		t.Errorf("mode %v, want 0400 (unchanged)", fi.Mode().Perm())
	}
}

func TestNotRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	h := openT(t, path, Options{})
	for _, s := range []string{
		"one",
		" secret --password=x", // leading space
		"",
		"   ",
		"\n\t \n",
		"one", // consecutive duplicate
		"two",
		"two",
		"one", // not consecutive: recorded
		"one\n",
	} {
		appendT(t, h, s)
	}
	want := []string{"one", "two", "one", "one\n"}
	if got := texts(h.Entries()); !equalStrings(got, want) {
		t.Fatalf("Entries = %q, want %q", got, want)
	}
	h.Close()
	h2 := openT(t, path, Options{})
	if got := texts(h2.Entries()); !equalStrings(got, want) {
		t.Fatalf("after reopen Entries = %q, want %q", got, want)
	}
	// The duplicate check also applies to the last loaded entry.
	appendT(t, h2, "one\n")
	if n := len(h2.Entries()); n != len(want) {
		t.Fatalf("duplicate of last loaded entry recorded: %d entries", n)
	}
}

func TestCapAndCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	const capN = 10
	h := openT(t, path, Options{MaxEntries: capN})
	const total = 57
	compacted := false
	prev := 0
	for i := 0; i < total; i++ {
		appendT(t, h, fmt.Sprintf("cmd %d", i))
		n := len(fileLines(t, path))
		if n > capN+capN/4 {
			t.Fatalf("after append %d file holds %d lines, above 1.25×cap", i, n)
		}
		if n < prev {
			compacted = true
			if n != capN {
				t.Fatalf("compaction left %d lines, want %d", n, capN)
			}
		}
		prev = n
	}
	if !compacted {
		t.Fatal("file was never compacted")
	}
	var want []string
	for i := total - capN; i < total; i++ {
		want = append(want, fmt.Sprintf("cmd %d", i))
	}
	if got := texts(h.Entries()); !equalStrings(got, want) {
		t.Fatalf("in-memory entries = %q, want %q", got, want)
	}
	h.Close()

	// The file keeps the newest entries, contiguous and ending with the last.
	h2 := openT(t, path, Options{MaxEntries: capN})
	if got := texts(h2.Entries()); !equalStrings(got, want) {
		t.Fatalf("reloaded entries = %q, want %q", got, want)
	}
	lines := fileLines(t, path)
	first := total - len(lines)
	for i, l := range lines {
		e, ok := decode([]byte(l))
		if !ok || e.Text != fmt.Sprintf("cmd %d", first+i) {
			t.Fatalf("file line %d = %q, want cmd %d", i, l, first+i)
		}
	}
	if runtime.GOOS != "windows" {
		checkPerm(t, path, 0o600)
	}
	// No temp files left behind.
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if de.Name() != "history" && de.Name() != "history.lock" {
			t.Errorf("unexpected file %q in history dir", de.Name())
		}
	}
}

func TestCorruptLinesSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	content := strings.Join([]string{
		`{"t":"2024-05-01T12:00:00Z","host":"h","text":"good 1"}`,
		`garbage \x00 not json`,
		`{"t":"2024-05-01T12:00:01Z","host":"h","text":"good\n2"}`,
		`{"t":"not a time","host":"h","text":"bad time"}`,
		``,
		`{"t":"2024-05-01T12:00:02Z","host":"h","text":""}`,
		`{"t":"2024-05-01T12:00:02Z","host":"h","text":"good 3"}`,
		`{"t":"2024-05-01T12:00:03Z","host":"h","te`, // torn write, no newline
	}, "\n")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	h := openT(t, path, Options{})
	want := []string{"good 1", "good\n2", "good 3"}
	if got := texts(h.Entries()); !equalStrings(got, want) {
		t.Fatalf("Entries = %q, want %q", got, want)
	}
	// Appending after a torn last line must not glue onto it.
	appendT(t, h, "after torn")
	h.Close()
	h2 := openT(t, path, Options{})
	want = append(want, "after torn")
	if got := texts(h2.Entries()); !equalStrings(got, want) {
		t.Fatalf("after append Entries = %q, want %q", got, want)
	}
}

func TestReloadSearchLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	a := openT(t, path, Options{})
	b := openT(t, path, Options{})
	appendT(t, a, "git status")
	appendT(t, a, "ls -la")
	appendT(t, b, "git log\n--oneline")
	if got := texts(b.Entries()); !equalStrings(got, []string{"git log\n--oneline"}) {
		t.Fatalf("b before Reload = %q", got)
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	all := []string{"git status", "ls -la", "git log\n--oneline"}
	if got := texts(b.Entries()); !equalStrings(got, all) {
		t.Fatalf("b after Reload = %q, want %q", got, all)
	}
	if got := texts(b.Search("git")); !equalStrings(got, []string{"git status", "git log\n--oneline"}) {
		t.Errorf("Search(git) = %q", got)
	}
	if got := b.Search("nope"); len(got) != 0 {
		t.Errorf("Search(nope) = %q", texts(got))
	}
	if got := texts(b.Last(2)); !equalStrings(got, all[1:]) {
		t.Errorf("Last(2) = %q", got)
	}
	if got := texts(b.Last(10)); !equalStrings(got, all) {
		t.Errorf("Last(10) = %q", got)
	}
	if got := b.Last(0); got != nil {
		t.Errorf("Last(0) = %q", texts(got))
	}
	// Returned slices are copies.
	es := b.Entries()
	es[0].Text = "mutated"
	if b.Entries()[0].Text != "git status" {
		t.Error("Entries returned internal slice")
	}
}

func TestClosed(t *testing.T) {
	h, err := Open(filepath.Join(t.TempDir(), "history"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.Append(Entry{Text: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := h.Reload(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close = %v, want ErrClosed", err)
	}
}

func TestDefaultPath(t *testing.T) {
	state := filepath.Join(t.TempDir(), "xdg")
	t.Setenv("XDG_STATE_HOME", state)
	p, err := DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "rshell", "history"); p != want {
		t.Errorf("DefaultPath = %q, want %q", p, want)
	}
	t.Setenv("XDG_STATE_HOME", "")
	if runtime.GOOS == "windows" {
		return
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	p, err = DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".local", "state", "rshell", "history"); p != want {
		t.Errorf("DefaultPath = %q, want %q", p, want)
	}
}

// Goroutines sharing one History and a second History on the same file,
// with a small cap so compaction races with appends.
func TestConcurrentGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	const capN = 50
	hs := []*History{openT(t, path, Options{MaxEntries: capN}), openT(t, path, Options{MaxEntries: capN})}
	const workers, per = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			h := hs[w%2]
			for i := 0; i < per; i++ {
				if err := h.Append(Entry{Text: fmt.Sprintf("w%d\n%d", w, i)}); err != nil {
					errs <- err
					return
				}
				h.Entries()
				h.Search("w")
				h.Last(3)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		if _, ok := decode(sc.Bytes()); !ok {
			t.Errorf("corrupt line %q", sc.Text())
		}
	}
	if n < capN || n > capN+capN/4 {
		t.Errorf("file holds %d entries, want between %d and %d", n, capN, capN+capN/4)
	}
}
