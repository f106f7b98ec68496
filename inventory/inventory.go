// Package inventory reads rshell's host inventory: a TOML file of hosts
// and groups of hosts, and the target syntax that names them ("web1",
// "web1,web3", "@web", "web[1-3,5]"). It also folds a list of host names
// back into that syntax for display.
//
// It imports nothing of the rest of rshell: the shell, the one-shot exec
// and shell completion all read it.
//
// The file:
//
//	fanout = 64                      # hosts dialed and run at once (optional)
//
//	[defaults]                       # applies to every host (optional)
//	port = 18812
//	token_file = "~/.config/rshell/token"
//	plaintext = false
//
//	[[hosts]]
//	name = "web1"
//	address = "10.0.0.1"             # host[:port]; default: the name
//	token_file = "tokens/web"        # relative to this file
//	fingerprint = "sha256:..."       # the server certificate to accept
//	ns = "shared"                    # attach to this named namespace
//
//	[[hosts]]
//	name = "db[01-10]"               # a range makes ten hosts...
//	address = "10.0.1.{n}"           # ...{n} is each one's number, {name} its name
//
//	[groups]
//	web = ["web1", "web2", "web[3-9]"]
//	all = ["@web", "db[01-10]"]      # a group may include another
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Host is one host of the inventory.
type Host struct {
	Name        string
	Addr        string // host or host:port as written (with the port setting applied)
	TokenFile   string // absolute, or "" for the shell's default
	Fingerprint string
	NS          string
	Plaintext   bool
	Line        int // where it is defined in the file
}

// Inventory is a parsed config file.
type Inventory struct {
	Path   string
	Fanout int // 0 = not set

	hosts  []*Host
	byName map[string]*Host
	groups map[string][]string // expanded host names, in order, without duplicates
}

// Member is one host a target names: from the inventory (Host set), or an
// address given directly.
type Member struct {
	Name string
	Addr string
	Host *Host // nil for an address not in the inventory
}

// Error is a config error with its place in the file.
type Error struct {
	Path string
	Line int // 0 = unknown
	Col  int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

type fileConfig struct {
	Fanout   int                 `toml:"fanout"`
	Defaults hostEntry           `toml:"defaults"`
	Hosts    []hostEntry         `toml:"hosts"`
	Groups   map[string][]string `toml:"groups"`
}

type hostEntry struct {
	Name        string `toml:"name"`
	Address     string `toml:"address"`
	Port        int    `toml:"port"`
	TokenFile   string `toml:"token_file"`
	Fingerprint string `toml:"fingerprint"`
	NS          string `toml:"ns"`
	Plaintext   *bool  `toml:"plaintext"`
}

// Empty is an inventory with no hosts: every target is then an address.
func Empty() *Inventory {
	return &Inventory{byName: map[string]*Host{}, groups: map[string][]string{}}
}

// Load reads and checks the file at path. A missing file is an error
// wrapping os.ErrNotExist (the caller decides whether that matters).
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// LoadOptional is Load, except that a missing file is an empty inventory.
func LoadOptional(path string) (*Inventory, error) {
	inv, err := Load(path)
	if errors.Is(err, os.ErrNotExist) {
		e := Empty()
		e.Path = path
		return e, nil
	}
	return inv, err
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:\-]+$`)

// Parse checks a config file's text; path is for messages and for token
// files named relative to it.
func Parse(path string, data []byte) (*Inventory, error) {
	loc := newLocator(data)
	fail := func(line int, format string, args ...any) error {
		return &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			de := strict.Errors[0]
			row, col := de.Position()
			return nil, &Error{Path: path, Line: row, Col: col, Msg: fmt.Sprintf("unknown key %q", strings.Join(de.Key(), "."))}
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, &Error{Path: path, Line: row, Col: col, Msg: de.Error()}
		}
		return nil, fail(0, "%v", err)
	}
	if fc.Fanout < 0 {
		return nil, fail(loc.key("", "fanout"), "fanout must not be negative")
	}
	if fc.Defaults.Name != "" || fc.Defaults.Address != "" {
		return nil, fail(loc.section("defaults"), "[defaults] cannot set name or address")
	}
	inv := Empty()
	inv.Path, inv.Fanout = path, fc.Fanout
	dir := filepath.Dir(path)
	for i, he := range fc.Hosts {
		line := loc.hostLine(i)
		if he.Name == "" {
			return nil, fail(line, "a host needs a name")
		}
		names, nums, err := expand(he.Name)
		if err != nil {
			return nil, fail(line, "host name %s", err)
		}
		if len(names) > 1 && he.Address != "" && !strings.Contains(he.Address, "{") {
			return nil, fail(line, "host %s names %d hosts but one address: put {name} or {n} in the address", he.Name, len(names))
		}
		if len(inv.hosts)+len(names) > MaxExpand*10 {
			return nil, fail(line, "too many hosts (more than %d)", MaxExpand*10)
		}
		port := he.Port
		if port == 0 {
			port = fc.Defaults.Port
		}
		if port < 0 || port > 65535 {
			return nil, fail(line, "port %d is out of range", port)
		}
		tok := firstNonEmpty(he.TokenFile, fc.Defaults.TokenFile)
		if tok != "" {
			tok = absPath(dir, tok)
		}
		plain := fc.Defaults.Plaintext != nil && *fc.Defaults.Plaintext
		if he.Plaintext != nil {
			plain = *he.Plaintext
		}
		fp := firstNonEmpty(he.Fingerprint, fc.Defaults.Fingerprint)
		for j, name := range names {
			if !nameRE.MatchString(name) {
				return nil, fail(line, "host name %q: use letters, digits, '-', '_', '.' and ':' only", name)
			}
			if old := inv.byName[name]; old != nil {
				return nil, fail(line, "duplicate host name %s (first defined on line %d)", name, old.Line)
			}
			addr := he.Address
			if addr == "" {
				addr = name
			}
			addr = strings.ReplaceAll(addr, "{name}", name)
			addr = strings.ReplaceAll(addr, "{n}", nums[j])
			if strings.ContainsAny(addr, "{}") {
				return nil, fail(line, "address %q: only {name} and {n} can be filled in", he.Address)
			}
			if port != 0 && !hasPort(addr) {
				addr = joinPort(addr, port)
			}
			h := &Host{Name: name, Addr: addr, TokenFile: tok, Fingerprint: fp, NS: firstNonEmpty(he.NS, fc.Defaults.NS), Plaintext: plain, Line: line}
			inv.hosts = append(inv.hosts, h)
			inv.byName[name] = h
		}
	}
	// groups: names first, so that members can name any of them
	gnames := make([]string, 0, len(fc.Groups))
	for g := range fc.Groups {
		gnames = append(gnames, g)
	}
	sort.Slice(gnames, func(i, j int) bool { return loc.group(gnames[i]) < loc.group(gnames[j]) })
	for _, g := range gnames {
		if !nameRE.MatchString(g) {
			return nil, fail(loc.group(g), "group name %q: use letters, digits, '-', '_', '.' and ':' only", g)
		}
		if h := inv.byName[g]; h != nil {
			return nil, fail(loc.group(g), "group %s has the name of a host (line %d): give it another", g, h.Line)
		}
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var resolve func(g string, path []string) error
	resolve = func(g string, path []string) error {
		switch state[g] {
		case done:
			return nil
		case visiting:
			return fail(loc.group(g), "group %s includes itself (%s)", g, strings.Join(append(path, g), " → "))
		}
		state[g] = visiting
		path = append(path, g)
		var out []string
		seen := map[string]bool{}
		add := func(n string) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		for _, m := range fc.Groups[g] {
			m = strings.TrimSpace(m)
			sub := strings.TrimPrefix(m, "@")
			if _, isGroup := fc.Groups[sub]; isGroup {
				if err := resolve(sub, path); err != nil {
					return err
				}
				for _, n := range inv.groups[sub] {
					add(n)
				}
				continue
			}
			if strings.HasPrefix(m, "@") {
				return fail(loc.group(g), "group %s names %s, which is not a group", g, m)
			}
			names, err := Expand(m)
			if err != nil {
				return fail(loc.group(g), "group %s: %v", g, err)
			}
			for _, n := range names {
				if inv.byName[n] == nil {
					return fail(loc.group(g), "group %s names unknown host %s%s", g, n, inv.suggest(n))
				}
				add(n)
			}
		}
		inv.groups[g] = out
		state[g] = done
		return nil
	}
	for _, g := range gnames {
		if err := resolve(g, nil); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

func absPath(dir, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func hasPort(addr string) bool {
	if strings.HasPrefix(addr, "[") {
		return strings.Contains(addr, "]:")
	}
	return strings.Count(addr, ":") == 1
}

func joinPort(addr string, port int) string {
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.Itoa(port)
}

// suggest says " (did you mean X?)" for a near host name, or "".
func (inv *Inventory) suggest(name string) string {
	best, bestD := "", 3
	for _, h := range inv.hosts {
		if d := distance(name, h.Name); d < bestD {
			best, bestD = h.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Host returns the host named name, or nil.
func (inv *Inventory) Host(name string) *Host {
	if inv == nil {
		return nil
	}
	return inv.byName[name]
}

// Hosts lists the hosts in file order.
func (inv *Inventory) Hosts() []*Host {
	if inv == nil {
		return nil
	}
	return inv.hosts
}

// HostNames lists the host names in file order.
func (inv *Inventory) HostNames() []string {
	if inv == nil {
		return nil
	}
	out := make([]string, len(inv.hosts))
	for i, h := range inv.hosts {
		out[i] = h.Name
	}
	return out
}

// GroupNames lists the group names, sorted.
func (inv *Inventory) GroupNames() []string {
	if inv == nil {
		return nil
	}
	out := make([]string, 0, len(inv.groups))
	for g := range inv.groups {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// Group returns the host names of a group, and whether it exists.
func (inv *Inventory) Group(name string) ([]string, bool) {
	if inv == nil {
		return nil, false
	}
	g, ok := inv.groups[name]
	return g, ok
}

// IsMulti reports whether target names several hosts, or may: a list, a
// group or a range.
func IsMulti(target string) bool {
	return strings.HasPrefix(strings.TrimSpace(target), "@") || len(SplitList(target)) > 1 ||
		strings.Contains(target, "[") && !strings.HasPrefix(strings.TrimSpace(target), "[")
}

// Resolve turns a target into its hosts, in order and without duplicates:
// a comma-separated list of host names, NAME=ADDR pairs, addresses,
// ranges of either ("web[1-3]") and @groups. A name that is not in the
// inventory is taken as an address.
func (inv *Inventory) Resolve(target string) ([]Member, error) {
	if inv == nil {
		inv = Empty()
	}
	var out []Member
	seen := map[string]bool{}
	add := func(m Member) {
		if !seen[m.Name] {
			seen[m.Name] = true
			out = append(out, m)
		}
	}
	for _, item := range SplitList(target) {
		if item == "" {
			return nil, fmt.Errorf("target %q has an empty item", target)
		}
		if g, ok := strings.CutPrefix(item, "@"); ok {
			names, exists := inv.groups[g]
			if !exists {
				return nil, fmt.Errorf("no group %s%s", item, inv.groupHint())
			}
			for _, n := range names {
				h := inv.byName[n]
				add(Member{Name: n, Addr: h.Addr, Host: h})
			}
			continue
		}
		if name, addr, ok := strings.Cut(item, "="); ok {
			if name == "" || addr == "" {
				return nil, fmt.Errorf("%q: expected NAME=ADDRESS", item)
			}
			add(Member{Name: name, Addr: addr})
			continue
		}
		if strings.HasPrefix(item, "[") { // an IPv6 address
			add(Member{Name: item, Addr: item})
			continue
		}
		names, err := Expand(item)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if h := inv.byName[n]; h != nil {
				add(Member{Name: n, Addr: h.Addr, Host: h})
			} else {
				add(Member{Name: n, Addr: n})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("target %q names no host", target)
	}
	return out, nil
}

func (inv *Inventory) groupHint() string {
	gs := inv.GroupNames()
	if len(gs) == 0 {
		if inv.Path != "" {
			return " (" + inv.Path + " defines no groups)"
		}
		return " (no config file defines groups)"
	}
	for i := range gs {
		gs[i] = "@" + gs[i]
	}
	if len(gs) > 10 {
		gs = append(gs[:10], "…")
	}
	return " — groups: " + strings.Join(gs, ", ")
}

// locator finds the line of a table or key in the source, for errors the
// TOML decoder cannot place (duplicate names, bad groups). It reads plain
// "[table]" / "key = ..." layouts; anything else gets line 0.
type locator struct {
	lines []string
}

func newLocator(data []byte) *locator {
	return &locator{lines: strings.Split(string(data), "\n")}
}

var headerRE = regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_."-]+)\s*\]\]?`)

// table reports the table header of line i, or "".
func (l *locator) header(i int) (string, bool) {
	m := headerRE.FindStringSubmatch(l.lines[i])
	if m == nil {
		return "", false
	}
	return strings.Trim(m[1], `"`), true
}

func (l *locator) section(name string) int {
	for i := range l.lines {
		if h, ok := l.header(i); ok && h == name {
			return i + 1
		}
	}
	return 0
}

func (l *locator) hostLine(n int) int {
	count := 0
	for i, line := range l.lines {
		if strings.HasPrefix(strings.TrimSpace(line), "[[") {
			if h, _ := l.header(i); h == "hosts" {
				if count == n {
					return i + 1
				}
				count++
			}
		}
	}
	return 0
}

// key finds "name = " in table sect ("" = the top level).
func (l *locator) key(sect, name string) int {
	cur := ""
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(name) + `"?\s*=`)
	for i, line := range l.lines {
		if h, ok := l.header(i); ok {
			cur = h
			continue
		}
		if cur == sect && re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

func (l *locator) group(name string) int {
	if n := l.key("groups", name); n > 0 {
		return n
	}
	return l.key("groups."+name, name)
}
