package repl

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Completion waits at most tabWait for the network; an answer that comes
// later is cached for the next Tab.
const (
	tabWait   = 50 * time.Millisecond
	fetchWait = 3 * time.Second
	cacheTTL  = 30 * time.Second
)

// completer answers Tab: commands after ':', their arguments from the
// command table, and remote names and attributes for code.
type completer struct {
	s *shell
}

// Complete returns the full candidates for the word that ends at the end of
// line, and that word (which the candidates replace).
func (c *completer) Complete(line string) (cands []string, word string) {
	trimmed := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(trimmed, ":") {
		return c.command(trimmed)
	}
	word = codeWord(line)
	if word == "" || unicode.IsDigit(rune(word[0])) {
		return nil, ""
	}
	return c.s.remoteNames(word), word
}

func (c *completer) command(line string) ([]string, string) {
	fields := strings.Fields(line)
	if len(fields) == 1 && !strings.HasSuffix(line, " ") {
		return addSpace(commandNames(strings.TrimPrefix(fields[0], ":"))), fields[0]
	}
	cmd := lookupCommand(strings.TrimPrefix(fields[0], ":"))
	if cmd == nil || cmd.complete == nil {
		return nil, ""
	}
	n, word := len(fields)-1, ""
	if !strings.HasSuffix(line, " ") {
		n, word = len(fields)-2, fields[len(fields)-1]
	}
	return cmd.complete(c.s, n, word), word
}

func addSpace(c []string) []string {
	for i := range c {
		c[i] += " "
	}
	return c
}

// codeWord is the dotted name being typed at the end of line ("os.ge").
func codeWord(line string) string {
	i := len(line)
	for i > 0 {
		r := rune(line[i-1])
		if r == '_' || r == '.' || r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			i--
			continue
		}
		break
	}
	w := line[i:]
	if strings.HasPrefix(w, ".") {
		return "" // an attribute of an expression the server cannot see
	}
	return w
}

func filterPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func completeHosts(arg int) func(*shell, int, string) []string {
	return func(s *shell, n int, word string) []string {
		if n != arg {
			return nil
		}
		return addSpace(filterPrefix(s.hostNames(), word))
	}
}

func (s *shell) hostNames() []string {
	var names []string
	for _, h := range s.hosts {
		names = append(names, h.name)
	}
	return names
}

func completeCopy(s *shell, n int, word string) []string {
	switch n {
	case 0:
		return addSpace(s.userNames(word))
	case 1:
		return addSpace(filterPrefix(s.hostNames(), word))
	}
	return nil
}

func completeGet(s *shell, n int, word string) []string {
	switch n {
	case 0:
		return addSpace(s.userNames(word))
	case 1:
		return localFiles(word)
	}
	return nil
}

// userNames completes global names of the current host (no attributes).
func (s *shell) userNames(word string) []string {
	if strings.Contains(word, ".") {
		return nil
	}
	return s.remoteNames(word)
}

func completeLocalFiles(arg int) func(*shell, int, string) []string {
	return func(_ *shell, n int, word string) []string {
		if n != arg {
			return nil
		}
		return localFiles(word)
	}
}

// localFiles completes a local path; directories end in a separator.
func localFiles(word string) []string {
	dir, base := filepath.Split(word)
	open := dir
	if open == "" {
		open = "."
	}
	if strings.HasPrefix(open, "~"+string(filepath.Separator)) {
		if home, err := os.UserHomeDir(); err == nil {
			open = filepath.Join(home, open[2:])
		}
	}
	ents, err := os.ReadDir(open)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		if e.IsDir() {
			out = append(out, dir+name+string(filepath.Separator))
		} else {
			out = append(out, dir+name+" ")
		}
	}
	sort.Strings(out)
	return out
}

// compCache keeps the current host's completions per base ("" for the
// globals, "os" for the attributes of os), so Tab rarely waits on the
// network. Running a chunk clears it: the namespace may have changed.
type compCache struct {
	mu      sync.Mutex
	entries map[string]*compEntry
}

type compEntry struct {
	ready chan struct{}
	names []string // set before ready is closed
	at    time.Time
}

func newCompCache() *compCache { return &compCache{entries: map[string]*compEntry{}} }

func (cc *compCache) clear() {
	cc.mu.Lock()
	clear(cc.entries)
	cc.mu.Unlock()
}

func (cc *compCache) clearNames() { cc.clear() }

// remoteNames returns the current host's names and attributes starting
// with word, waiting at most tabWait.
func (s *shell) remoteNames(word string) []string {
	h := s.cur
	if h == nil {
		return nil
	}
	c, state := h.snapshot()
	if state != stateConnected || c == nil {
		return nil
	}
	base := ""
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		base = word[:i]
	}
	cc := h.comp
	cc.mu.Lock()
	e := cc.entries[base]
	if e != nil {
		select {
		case <-e.ready:
			if time.Since(e.at) > cacheTTL {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		select {
		case <-s.closing:
			cc.mu.Unlock()
			return nil
		default:
		}
		e = &compEntry{ready: make(chan struct{})}
		cc.entries[base] = e
		prefix := ""
		if base != "" {
			prefix = base + "."
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, fetchWait)
			defer cancel()
			go func() {
				select {
				case <-s.closing:
					cancel()
				case <-ctx.Done():
				}
			}()
			names, err := c.Complete(ctx, prefix)
			if err != nil {
				names = nil
				cc.mu.Lock()
				if cc.entries[base] == e {
					delete(cc.entries, base) // try again on the next Tab
				}
				cc.mu.Unlock()
			}
			e.names, e.at = names, time.Now()
			close(e.ready)
		}()
	}
	cc.mu.Unlock()
	t := time.NewTimer(tabWait)
	defer t.Stop()
	select {
	case <-e.ready:
	case <-t.C:
		return nil
	}
	return filterPrefix(e.names, word)
}
