package repl

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rshell/rshell/transport"
)

// Host states, as :hosts shows them.
const (
	stateConnected = "connected"
	stateLost      = "lost"
	stateClosed    = "closed"
)

// host is one server the shell talks to. Its fields are guarded by mu: a
// watcher goroutine marks it lost while the loop may be reading it.
type host struct {
	name, addr string
	opts       transport.Options

	mu       sync.Mutex
	client   *transport.Client
	state    string
	lostWhy  string
	reported bool // the loss was already told to the user
	rtt      time.Duration
	info     transport.HostInfo
	session  string
	secret   string
	re       reconnState // reconnect.go

	comp *compCache
}

func (h *host) snapshot() (c *transport.Client, state string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.client, h.state
}

// splitHostSpec parses "name=addr", "addr" and "addr as name" forms into
// a name and a host:port address.
func splitHostSpec(spec string) (name, addr string) {
	spec = strings.TrimSpace(spec)
	if i := strings.Index(spec, "="); i > 0 {
		name, spec = spec[:i], spec[i+1:]
	}
	addr = withPort(spec)
	if name == "" {
		name = defaultName(addr)
	}
	return name, addr
}

// withPort adds DefaultPort to an address without a port.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") { // bare IPv6
		return net.JoinHostPort(addr, DefaultPort)
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), DefaultPort)
}

// defaultName is the host part of addr, or the whole address when the
// host part alone would be ambiguous (a loopback with a port other than
// the default is named by its port too).
func defaultName(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if p != DefaultPort {
		return h + ":" + p
	}
	return h
}

// lostReason turns a transport error wrapping ErrConnLost into its
// parenthesised reason ("connection reset").
func lostReason(err error) string {
	msg := err.Error()
	msg = strings.TrimSuffix(msg, ": "+transport.ErrConnLost.Error())
	if i := strings.Index(msg, " ("); i >= 0 && strings.HasPrefix(msg, "lost ") {
		if j := strings.LastIndex(msg, ")"); j > i {
			return msg[i+2 : j]
		}
	}
	return msg
}

// connMsg is a connection error as one short line.
func connMsg(err error) string {
	msg := err.Error()
	return strings.TrimSuffix(msg, ": "+transport.ErrConnLost.Error())
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// findHost returns the host named name, or whose address is name.
func (s *shell) findHost(name string) *host {
	for _, h := range s.hosts {
		if h.name == name {
			return h
		}
	}
	for _, h := range s.hosts {
		if h.addr == name || h.addr == withPort(name) {
			return h
		}
	}
	return nil
}

// addHost connects to a new host and adds it to the list; it says so when
// interactive.
func (s *shell) addHost(name, addr string, opts transport.Options) (*host, error) {
	if name == "" {
		name = defaultName(addr)
		if opts.NS != "" {
			name += "/" + opts.NS
		}
	}
	if old := s.findHost(name); old != nil && old.name == name {
		if _, state := old.snapshot(); state != stateClosed {
			return nil, fmt.Errorf("there is already a host named %s (%s) — :connect %s as OTHERNAME", name, old.addr, addr)
		}
		s.removeHost(old)
	}
	confirmed := false
	if s.cfg.ConfirmNewHosts && opts.Trust.Confirm == nil && s.lines != nil {
		opts.Trust.Confirm = func(addr, fp string) bool {
			ok := s.confirmHost(addr, fp)
			confirmed = confirmed || ok
			return ok
		}
	}
	h := &host{name: name, addr: addr, opts: opts, comp: newCompCache()}
	if err := s.dial(h); err != nil {
		if !confirmed {
			return nil, err
		}
		// The answer may have come after the handshake's deadline; the
		// certificate is pinned now, so a second try needs no question.
		if err := s.dial(h); err != nil {
			return nil, err
		}
	}
	s.hosts = append(s.hosts, h)
	if s.cfg.Interactive {
		s.print(s.banner(h))
	}
	return h, nil
}

// confirmHost asks whether to trust a certificate seen for the first time.
func (s *shell) confirmHost(addr, fp string) bool {
	s.print(fmt.Sprintf("The authenticity of %s can't be established.\nCertificate fingerprint is %s.\n", addr, fp))
	for {
		ans, err := s.lines.ReadLine("Trust it and remember it? [y/N] ")
		if err != nil {
			return false
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "y", "yes":
			return true
		case "", "n", "no":
			return false
		}
		s.print("Please answer yes or no.\n")
	}
}

func (s *shell) banner(h *host) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.info.Version
	if v != "" {
		v = ", rshell " + v
	}
	return fmt.Sprintf("connected to %s (%s/%s%s) — session %s…\n", h.name, Escape(h.info.OS), Escape(h.info.Arch), Escape(v), short(h.session))
}

func (s *shell) removeHost(h *host) {
	for i, x := range s.hosts {
		if x == h {
			s.hosts = append(s.hosts[:i], s.hosts[i+1:]...)
			break
		}
	}
	if s.cur == h {
		s.cur = nil
		if len(s.hosts) > 0 {
			s.cur = s.hosts[0]
		}
	}
}

func (s *shell) closeHost(h *host) {
	h.mu.Lock()
	c := h.client
	h.stopReconnectLocked()
	h.setStateLocked(stateClosed)
	h.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// connectAll connects the hosts of the config; the first becomes current.
// It reports false when the shell cannot start.
func (s *shell) connectAll() bool {
	ok := true
	for _, spec := range s.cfg.Hosts {
		addr := withPort(spec.Addr)
		h, err := s.addHost(spec.Name, addr, spec.Options)
		if err != nil {
			s.printErr(s.r.Fail("%s", connMsg(err)))
			ok = false
			continue
		}
		if s.cur == nil {
			s.cur = h
		}
	}
	if s.cfg.Interactive {
		return s.cur != nil // carry on with the hosts that answered
	}
	return ok
}
