package repl

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rshell/rshell/transport"
)

// command is one :command. The table below is the only list of them: help,
// completion and "did you mean" all read it.
type command struct {
	name    string
	args    string // synopsis of the arguments, "" for none
	summary string // one line for :help
	help    string // more, for :help NAME
	run     func(s *shell, args []string)
	// complete returns the candidates for argument number n (0-based)
	// that start with word; nil means no completion.
	complete func(s *shell, n int, word string) []string
}

// commands is sorted by name (a test checks).
var commands []command

func init() {
	commands = []command{
		{name: "close", args: "HOST", summary: "close the connection to a host (its session waits on the server to be resumed)",
			run: cmdClose, complete: completeHosts(0)},
		{name: "connect", args: "ADDR [as NAME]", summary: "connect to another host (default port " + DefaultPort + ") without switching to it",
			help: "NAME=ADDR also names the host. The new host uses the token and TLS settings the shell started with.",
			run:  cmdConnect},
		{name: "copy", args: "NAME HOST [NEWNAME]", summary: "copy a value from this host's namespace into another host's",
			run: cmdCopy, complete: completeCopy},
		{name: "download", args: "REMOTE [LOCAL]", summary: "download a file from the current host (checksummed)",
			run: cmdDownload, complete: completeLocalFiles(1)},
		{name: "get", args: "NAME FILE.json", summary: "save a value from the namespace as a local JSON file",
			help: "dicts become objects (int, float, bool and None keys become strings, as Python's json does), lists, tuples\n" +
				"and sets become arrays, structs become objects, big ints stay exact numbers, bytes become base64 strings.\n" +
				"NaN, infinities, refs (functions, modules) and other dict keys have no JSON form: :get says where one is.",
			run: cmdGet, complete: completeGet},
		{name: "help", args: "[CMD]", summary: "list the commands, or explain one",
			run: cmdHelp, complete: func(_ *shell, n int, word string) []string {
				if n != 0 {
					return nil
				}
				return commandNames(strings.TrimPrefix(word, ":"))
			}},
		{name: "history", args: "[N|TEXT]", summary: "show the last N history entries (default 20), or those containing TEXT",
			run: cmdHistory},
		{name: "hosts", summary: "list the hosts: name, address, state, round trip, session, OS",
			run: func(s *shell, _ []string) { s.listHosts() }},
		{name: "load", args: "FILE.star", summary: "run a local Starlark file in the current namespace",
			help: "Tracebacks through the functions it defines name the file and its lines.",
			run:  cmdLoad, complete: completeLocalFiles(0)},
		{name: "ns", args: "[PATTERN]", summary: "list the namespace: names, types, short values (PATTERN: glob or substring)",
			run: cmdNS},
		{name: "ping", args: "[N]", summary: "measure the round trip to the current host (N times: min/median/max)",
			run: cmdPing},
		{name: "quit", summary: "leave the shell (Ctrl-D does the same)",
			run: func(s *shell, _ []string) { s.quit = true }},
		{name: "reset", summary: "clear the current host's namespace",
			run: cmdReset},
		{name: "sessions", summary: "list the sessions the current host keeps: id, namespace, age, idle, names, clients (yours marked)",
			run: cmdSessions},
		{name: "timeout", args: "[DURATION|off]", summary: "set or show the deadline for each chunk (e.g. 2s, 1m30s)",
			run: cmdTimeout, complete: func(_ *shell, n int, word string) []string {
				if n != 0 {
					return nil
				}
				return filterPrefix([]string{"off", "1s", "10s", "1m"}, word)
			}},
		{name: "upload", args: "LOCAL [REMOTE]", summary: "upload a local file to the current host (checksummed)",
			run: cmdUpload, complete: completeLocalFiles(0)},
		{name: "use", args: "[HOST|HOST/NAME]", summary: "switch to a host, connecting if needed; alone, list the hosts",
			help: "HOST/NAME attaches to the namespace NAME on HOST, shared by every client that names it.",
			run:  cmdUse, complete: completeHosts(0)},
	}
}

func lookupCommand(name string) *command {
	i := sort.Search(len(commands), func(i int) bool { return commands[i].name >= name })
	if i < len(commands) && commands[i].name == name {
		return &commands[i]
	}
	return nil
}

func commandNames(prefix string) []string {
	var out []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, prefix) {
			out = append(out, ":"+c.name)
		}
	}
	return out
}

// command runs one :command line (without its colon).
func (s *shell) command(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		s.fail("a command name must follow ':' — :help lists them")
		return
	}
	c := lookupCommand(fields[0])
	if c == nil {
		if sugg := suggest(fields[0]); sugg != "" {
			s.fail("unknown command :%s — did you mean :%s?", Escape(fields[0]), sugg)
		} else {
			s.fail("unknown command :%s — :help lists the commands", Escape(fields[0]))
		}
		return
	}
	c.run(s, fields[1:])
}

// suggest returns the command closest to name: one it is a prefix of,
// else the nearest by edit distance.
func suggest(name string) string {
	for _, c := range commands {
		if strings.HasPrefix(c.name, name) {
			return c.name
		}
	}
	best, bestD := "", 1<<30
	for _, c := range commands {
		if d := editDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	if bestD >= max(len(name), 4) { // nothing alike
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func (s *shell) usage(c string) {
	cmd := lookupCommand(c)
	s.fail("usage: :%s %s", cmd.name, cmd.args)
}

// request returns a context for a command's network call: Ctrl-C cancels
// it, and it ends after d.
func (s *shell) request(d time.Duration) (context.Context, func()) {
	ctx, release := s.intr.guard(s.ctx)
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, func() { cancel(); release() }
}

// current returns the current host's client, or reports why there is none.
func (s *shell) current() (*host, *transport.Client, bool) {
	if s.cur == nil {
		s.fail("no host — :connect ADDR first")
		return nil, nil, false
	}
	c, err := s.client(s.cur)
	if err != nil {
		s.fail("%s", err.Error())
		return nil, nil, false
	}
	return s.cur, c, true
}

// requestFailed reports the error of a side request on h.
func (s *shell) requestFailed(h *host, c *transport.Client, what string, err error) {
	s.failed = true
	if ctxErr := s.ctx.Err(); ctxErr == nil && (err == context.Canceled || err == context.DeadlineExceeded) {
		if err == context.Canceled {
			s.printErr(s.r.Notice("cancelled"))
		} else {
			s.printErr(s.r.Fail("%s: %s did not answer in time", what, h.name))
		}
		return
	}
	if re, ok := err.(*transport.RemoteError); ok {
		s.printErr(s.r.Fail("%s: %s", what, Escape(re.Error())))
		return
	}
	s.reportErr(h, c, err, false)
}

func cmdHelp(s *shell, args []string) {
	if len(args) > 0 {
		name := strings.TrimPrefix(args[0], ":")
		c := lookupCommand(name)
		if c == nil {
			if sugg := suggest(name); sugg != "" {
				s.fail("no command :%s — did you mean :%s?", Escape(name), sugg)
			} else {
				s.fail("no command :%s", Escape(name))
			}
			return
		}
		text := fmt.Sprintf(":%s %s\n  %s\n", c.name, c.args, c.summary)
		if c.help != "" {
			text += "  " + strings.ReplaceAll(c.help, "\n", "\n  ") + "\n"
		}
		s.print(text)
		return
	}
	w := 0
	for _, c := range commands {
		w = max(w, len(c.name)+len(c.args)+2)
	}
	var b strings.Builder
	b.WriteString("Type Starlark to run it on the current host; a block ends at a blank line.\n")
	for _, c := range commands {
		syn := ":" + c.name
		if c.args != "" {
			syn += " " + c.args
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", w, syn, c.summary)
	}
	b.WriteString("Tab completes, Up-arrow recalls whole chunks, Ctrl-R searches, Ctrl-C cancels, Ctrl-D leaves.\n")
	s.print(b.String())
}

func cmdUse(s *shell, args []string) {
	if len(args) == 0 {
		s.listHosts()
		return
	}
	if len(args) > 1 {
		s.usage("use")
		return
	}
	if s.useTarget(args[0]) { // several hosts, an @group, a host of the config (fanout.go)
		return
	}
	h := s.findHost(args[0])
	if h == nil && strings.Contains(args[0], "/") { // HOST/NAME: a shared namespace
		var err error
		if h, err = s.addShared(args[0]); err != nil {
			s.fail("%s", connMsg(err))
			return
		}
	}
	if h == nil {
		name, addr := splitHostSpec(args[0])
		var err error
		if h, err = s.addHost(name, addr, s.cfg.Options); err != nil {
			s.fail("%s", connMsg(err))
			return
		}
	}
	if _, state := h.snapshot(); state == stateClosed {
		if err := s.dial(h); err != nil {
			s.fail("%s", connMsg(err))
			return
		}
	}
	s.cur = h
}

func cmdConnect(s *shell, args []string) {
	var name, addr string
	switch {
	case len(args) == 1:
		name, addr = splitHostSpec(args[0])
	case len(args) == 3 && args[1] == "as":
		addr, name = withPort(args[0]), args[2]
	default:
		s.usage("connect")
		return
	}
	if _, err := s.addHost(name, addr, s.cfg.Options); err != nil {
		s.fail("%s", connMsg(err))
		return
	}
	if s.cur == nil {
		s.cur = s.hosts[len(s.hosts)-1]
	}
}

func cmdClose(s *shell, args []string) {
	if len(args) != 1 {
		s.usage("close")
		return
	}
	h := s.findHost(args[0])
	if h == nil {
		s.fail("no host %s — :hosts lists them", Escape(args[0]))
		return
	}
	s.closeHost(h)
	s.removeHost(h)
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("closed %s\n", h.name))
	}
}

func (s *shell) listHosts() {
	if len(s.hosts) == 0 {
		s.print("no hosts — :connect ADDR\n")
		return
	}
	rows := [][]string{{"", "HOST", "ADDRESS", "STATE", "RTT", "SESSION", "OS"}}
	for _, h := range s.hosts {
		h.mu.Lock()
		mark := " "
		if h == s.cur {
			mark = "*"
		}
		rtt := "-"
		if h.rtt > 0 {
			rtt = fmtDuration(h.rtt)
		}
		osArch := "-"
		if h.info.OS != "" {
			osArch = Escape(h.info.OS + "/" + h.info.Arch)
		}
		rows = append(rows, []string{mark, h.name, h.addr, h.stateTextLocked(), rtt, short(h.session), osArch})
		h.mu.Unlock()
	}
	s.print(table(rows))
}

// table aligns rows into columns, two spaces apart.
func table(rows [][]string) string {
	var w []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			if i == len(r)-1 {
				line.WriteString(c)
			} else {
				line.WriteString(c + strings.Repeat(" ", w[i]-len([]rune(c))))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

func fmtDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return d.Round(10 * time.Millisecond).String()
}

func cmdPing(s *shell, args []string) {
	n := 1
	if len(args) > 1 {
		s.usage("ping")
		return
	}
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 10000 {
			s.fail("ping: N must be a number from 1 to 10000, not %s", Escape(args[0]))
			return
		}
		n = v
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	ctx, done := s.request(time.Duration(n) * 10 * time.Second)
	defer done()
	rtts := make([]time.Duration, 0, n)
	for range n {
		d, err := c.Ping(ctx)
		if err != nil {
			s.requestFailed(h, c, "ping", err)
			return
		}
		rtts = append(rtts, d)
	}
	h.mu.Lock()
	h.rtt = rtts[len(rtts)-1]
	h.mu.Unlock()
	if n == 1 {
		s.print(fmt.Sprintf("%s: %s\n", h.name, fmtDuration(rtts[0])))
		return
	}
	slices.Sort(rtts)
	s.print(fmt.Sprintf("%s: %d pings, min %s, median %s, max %s\n", h.name, n,
		fmtDuration(rtts[0]), fmtDuration(rtts[len(rtts)/2]), fmtDuration(rtts[len(rtts)-1])))
}

func cmdTimeout(s *shell, args []string) {
	switch {
	case len(args) == 0:
		if s.timeout == 0 {
			s.print("timeout: off\n")
		} else {
			s.print(fmt.Sprintf("timeout: %s per chunk\n", s.timeout))
		}
	case len(args) > 1:
		s.usage("timeout")
	case args[0] == "off" || args[0] == "0":
		s.timeout = 0
	default:
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 {
			s.fail("timeout: %q is not a duration — try 2s, 500ms, 1m30s or off", Escape(args[0]))
			return
		}
		s.timeout = d
	}
}

func cmdReset(s *shell, args []string) {
	if len(args) != 0 {
		s.usage("reset")
		return
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	ctx, done := s.request(30 * time.Second)
	defer done()
	if err := c.Reset(ctx); err != nil {
		s.requestFailed(h, c, "reset", err)
		return
	}
	h.comp.clear()
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("namespace of %s cleared\n", h.name))
	}
}

func cmdNS(s *shell, args []string) {
	if len(args) > 1 {
		s.usage("ns")
		return
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	ctx, done := s.request(30 * time.Second)
	defer done()
	items, err := c.Names(ctx)
	if err != nil {
		s.requestFailed(h, c, "ns", err)
		return
	}
	pat := ""
	if len(args) == 1 {
		pat = args[0]
	}
	rows := [][]string{}
	for _, it := range items {
		if pat != "" && !matchName(pat, it.Name) {
			continue
		}
		repr := Escape(it.Repr)
		if max := s.r.Width - 30; max > 10 && len([]rune(repr)) > max {
			repr = string([]rune(repr)[:max-1]) + "…"
		}
		rows = append(rows, []string{Escape(it.Name), Escape(it.Type), repr})
	}
	if len(rows) == 0 {
		if pat != "" {
			s.print(fmt.Sprintf("no names match %s\n", Escape(pat)))
		} else {
			s.print("the namespace is empty\n")
		}
		return
	}
	s.print(table(rows))
}

// matchName matches a glob pattern, or a substring when pat has no glob
// characters.
func matchName(pat, name string) bool {
	if strings.ContainsAny(pat, "*?[") {
		ok, err := path.Match(pat, name)
		return ok && err == nil
	}
	return strings.Contains(name, pat)
}

func cmdLoad(s *shell, args []string) {
	if len(args) != 1 {
		s.usage("load")
		return
	}
	src, err := os.ReadFile(args[0])
	if err != nil {
		s.fail("load: %s", localErr(err))
		return
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	base := filepath.Base(args[0])
	before := map[string]transport.NameInfo{}
	ctx, done := s.request(30 * time.Second)
	items, err := c.Names(ctx)
	done()
	if err != nil {
		s.requestFailed(h, c, "load", err)
		return
	}
	for _, it := range items {
		before[it.Name] = it
	}
	if !s.exec(h, transport.EvalRequest{Src: string(src), File: base}, false) {
		s.failed = true
		return
	}
	ctx, done = s.request(30 * time.Second)
	items, err = c.Names(ctx)
	done()
	if err != nil {
		s.requestFailed(h, c, "load", err)
		return
	}
	var funcs, values []string
	for _, it := range items {
		if old, ok := before[it.Name]; ok && old == it {
			continue
		}
		if it.Type == "function" || it.Type == "builtin_function_or_method" {
			funcs = append(funcs, Escape(it.Name))
		} else {
			values = append(values, Escape(it.Name))
		}
	}
	var parts []string
	if len(funcs) > 0 {
		parts = append(parts, fmt.Sprintf("%s: %s", plural(len(funcs), "function"), strings.Join(funcs, ", ")))
	}
	if len(values) > 0 {
		parts = append(parts, fmt.Sprintf("%s: %s", plural(len(values), "value"), strings.Join(values, ", ")))
	}
	what := "nothing new"
	if len(parts) > 0 {
		what = strings.Join(parts, "; ")
	}
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("loaded %s (%s)\n", Escape(base), what))
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// localErr shortens an *os.PathError to "FILE: reason".
func localErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Sprintf("%s: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

func cmdCopy(s *shell, args []string) {
	if len(args) < 2 || len(args) > 3 {
		s.usage("copy")
		return
	}
	name, to := args[0], args[1]
	newName := name
	if len(args) == 3 {
		newName = args[2]
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	dst := s.findHost(to)
	if dst == nil {
		n, addr := splitHostSpec(to)
		var err error
		if dst, err = s.addHost(n, addr, s.cfg.Options); err != nil {
			s.fail("copy: %s", connMsg(err))
			return
		}
	}
	dc, err := s.client(dst)
	if err != nil {
		s.fail("copy: %s", err.Error())
		return
	}
	ctx, done := s.request(5 * time.Minute)
	defer done()
	v, err := c.Get(ctx, name)
	if err != nil {
		s.requestFailed(h, c, "copy", err)
		return
	}
	if err := dc.Put(ctx, newName, v); err != nil {
		s.requestFailed(dst, dc, "copy", err)
		return
	}
	dst.comp.clearNames()
	if s.cfg.Interactive {
		target := dst.name
		if newName != name {
			target += " as " + newName
		}
		s.print(fmt.Sprintf("copied %s (%s) to %s\n", Escape(name), v.Kind, Escape(target)))
	}
}

func cmdGet(s *shell, args []string) {
	if len(args) != 2 {
		s.usage("get")
		return
	}
	name, file := args[0], args[1]
	h, c, ok := s.current()
	if !ok {
		return
	}
	ctx, done := s.request(5 * time.Minute)
	v, err := c.Get(ctx, name)
	done()
	if err != nil {
		s.requestFailed(h, c, "get", err)
		return
	}
	data, err := toJSON(v, name)
	if err != nil {
		s.fail("get: %v", err)
		return
	}
	if err := writeFileAtomic(file, data); err != nil {
		s.fail("get: %s", localErr(err))
		return
	}
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("saved %s (%s) to %s (%s)\n", Escape(name), describe(v), file, byteSize(int64(len(data)))))
	}
}

func describe(v transport.Value) string {
	switch v.Kind {
	case transport.KindDict:
		return plural(v.Len(), "key")
	case transport.KindList, transport.KindTuple, transport.KindSet:
		return fmt.Sprintf("%s of %s", v.Kind, plural(v.Len(), "item"))
	}
	return v.Kind.String()
}

func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return plural(int(n), "byte")
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

func cmdHistory(s *shell, args []string) {
	if s.hist == nil {
		s.fail("history: no history is kept here (not a terminal, or no history file)")
		return
	}
	n := 20
	var entries []historyEntry
	switch {
	case len(args) == 1:
		if v, err := strconv.Atoi(args[0]); err == nil && v > 0 {
			n = v
			break
		}
		fallthrough
	case len(args) > 1:
		for _, e := range s.hist.Search(strings.Join(args, " ")) {
			entries = append(entries, historyEntry{e.Host, e.Text})
		}
		n = len(entries)
	}
	if entries == nil {
		all := s.hist.Entries()
		start := max(0, len(all)-n)
		for _, e := range all[start:] {
			entries = append(entries, historyEntry{e.Host, e.Text})
		}
	}
	w := 0
	for _, e := range entries {
		w = max(w, len(e.host))
	}
	var b strings.Builder
	for i, e := range entries {
		lines := strings.Split(e.text, "\n")
		fmt.Fprintf(&b, "%4d  %-*s  %s\n", i+1, w, Escape(e.host), Escape(lines[0]))
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "%4s  %-*s  %s\n", "", w, "", Escape(l))
		}
	}
	s.print(b.String())
}

type historyEntry struct{ host, text string }
