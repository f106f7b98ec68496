package history

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	envWriter = "RSHELL_HISTORY_TEST_WRITER"
	envPath   = "RSHELL_HISTORY_TEST_PATH"
	perWriter = 1000
)

// writerText is the chunk writer w appends as its i-th entry: multi-line and
// a few KB so that interleaved writes would be detected.
func writerText(w string, i int) string {
	pad := strings.Repeat(w, 60)
	var b strings.Builder
	fmt.Fprintf(&b, "writer %s seq %04d\n", w, i)
	for j := 0; j < 20; j++ {
		fmt.Fprintf(&b, "%s line %02d %s\n", w, j, pad)
	}
	fmt.Fprintf(&b, "end %s %04d", w, i)
	return b.String()
}

// TestHelperProcess is not a real test: it is the writer process started by
// TestTwoProcessesAppend. It waits on stdin (the start barrier: a pipe the
// parent closes to release both writers) and then appends perWriter entries.
func TestHelperProcess(t *testing.T) {
	w := os.Getenv(envWriter)
	if w == "" {
		return
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Fatalf("barrier: %v", err)
	}
	h, err := Open(os.Getenv(envPath), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := 0; i < perWriter; i++ {
		if err := h.Append(Entry{Text: writerText(w, i)}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func TestTwoProcessesAppend(t *testing.T) {
	if os.Getenv(envWriter) != "" {
		t.Skip("in helper process")
	}
	path := filepath.Join(t.TempDir(), "rshell", "history")
	writers := []string{"A", "B"}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmds := make([]*exec.Cmd, len(writers))
	outs := make([]*bytes.Buffer, len(writers))
	for i, w := range writers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envWriter+"="+w, envPath+"="+path)
		cmd.Stdin = pr
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			pr.Close()
			for _, c := range cmds[:i] {
				c.Process.Kill()
				c.Wait()
			}
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	// Both writers are running and blocked reading the pipe; closing our
	// ends delivers EOF to both at once.
	pr.Close()
	pw.Close()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %s: %v\n%s", writers[i], err, outs[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if n := len(fileLines(t, path)); n != len(writers)*perWriter {
		t.Fatalf("file has %d lines, want %d", n, len(writers)*perWriter)
	}
	h := openT(t, path, Options{})
	entries := h.Entries()
	if len(entries) != len(writers)*perWriter {
		t.Fatalf("loaded %d entries, want %d", len(entries), len(writers)*perWriter)
	}
	next := map[string]int{}
	switches := 0
	prev := ""
	for k, e := range entries {
		var w string
		var i int
		if _, err := fmt.Sscanf(e.Text, "writer %s seq %d\n", &w, &i); err != nil {
			t.Fatalf("entry %d: unparsable header: %q", k, e.Text)
		}
		if e.Text != writerText(w, i) {
			t.Fatalf("entry %d (writer %s seq %d) corrupted: %q", k, w, i, e.Text)
		}
		if i != next[w] {
			t.Fatalf("entry %d: writer %s seq %d, want seq %d", k, w, i, next[w])
		}
		next[w]++
		if prev != "" && w != prev {
			switches++
		}
		prev = w
	}
	for _, w := range writers {
		if next[w] != perWriter {
			t.Errorf("writer %s: %d entries, want %d", w, next[w], perWriter)
		}
	}
	t.Logf("%d writer switches in the file (interleaving at entry granularity)", switches)
}
