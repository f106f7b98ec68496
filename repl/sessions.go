package repl

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rshell/rshell/transport"
)

// cmdSessions lists the sessions the current host keeps.
func cmdSessions(s *shell, args []string) {
	if len(args) != 0 {
		s.usage("sessions")
		return
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	ctx, done := s.request(30 * time.Second)
	defer done()
	list, err := c.Sessions(ctx)
	if err != nil {
		s.requestFailed(h, c, "sessions", err)
		return
	}
	s.print(SessionsTable(list))
}

// SessionsTable formats a server's sessions as :sessions and
// `rshell serve --list-sessions` show them; the asking client's own
// session is marked with a star.
func SessionsTable(list []transport.SessionInfo) string {
	if len(list) == 0 {
		return "no sessions\n"
	}
	rows := [][]string{{"", "SESSION", "NAMESPACE", "AGE", "IDLE", "NAMES", "CHUNKS", "CLIENTS"}}
	for _, si := range list {
		mark := " "
		if si.Mine {
			mark = "*"
		}
		ns := "-"
		if si.NS != "" {
			ns = Escape(si.NS)
		}
		idle := "-"
		if si.Attached == 0 {
			idle = fmtAge(si.IdleS)
		}
		rows = append(rows, []string{mark, Escape(si.ID), ns, fmtAge(si.AgeS), idle,
			strconv.Itoa(si.Names), strconv.Itoa(si.Chunks), strconv.Itoa(si.Attached)})
	}
	return table(rows)
}

// fmtAge is a number of seconds as "42s", "3m05s", "2h07m" or "3d04h".
func fmtAge(sec int64) string {
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", max(sec, 0))
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", sec/60, sec%60)
	case sec < 86400:
		return fmt.Sprintf("%dh%02dm", sec/3600, sec%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", sec/86400, sec%86400/3600)
}

// addShared connects to the named shared namespace of "HOST/NAME": HOST
// is a known host (its address and options are used) or an address.
func (s *shell) addShared(spec string) (*host, error) {
	i := strings.LastIndex(spec, "/")
	base, ns := spec[:i], spec[i+1:]
	if base == "" || ns == "" {
		return nil, fmt.Errorf("%q: expected HOST/NAME (a host and the name of a shared namespace)", spec)
	}
	opts := s.cfg.Options
	var name, addr string
	if known := s.findHost(base); known != nil {
		name, addr = known.name, known.addr
		if j := strings.LastIndex(name, "/"); j >= 0 && known.opts.NS != "" {
			name = name[:j]
		}
		opts = known.opts
	} else {
		name, addr = splitHostSpec(base)
	}
	opts.NS = ns
	opts.Session, opts.Secret = "", ""
	return s.addHost(name+"/"+ns, addr, opts)
}
