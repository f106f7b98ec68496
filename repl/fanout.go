package repl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rshell/rshell/inventory"
	"github.com/rshell/rshell/transport"
)

// Fan-out: with several hosts as the target (`:use @web`, `:use web1,web3`,
// `rshell connect @web`, `rshell exec`), each chunk runs on all of them at
// once. Hosts are dialed in parallel, at most Fanout at a time; the chunk
// itself starts on every host as soon as that host is connected, so a
// `while True: pass` runs everywhere and Ctrl-C stops it everywhere. The
// results are gathered (gather.go) or streamed line by line (`:gather off`).

// DefaultFanout is how many hosts are dialed at once unless --fanout or the
// config file says otherwise.
const DefaultFanout = 64

// DefaultConfigPath is the inventory file: $XDG_CONFIG_HOME/rshell/config.toml.
func DefaultConfigPath() string { return filepath.Join(transport.ConfigDir(), "config.toml") }

const (
	// slack lets the server report a passed deadline itself before the
	// client gives up on a host.
	fanSlack = 500 * time.Millisecond
	// cancelWait bounds the wait for hosts to confirm a Ctrl-C.
	cancelWait = 2 * time.Second
	// maxGatherOutput is the print() output kept per host for gathering.
	maxGatherOutput = 1 << 20
)

// fanState is the shell's fan-out state; only the loop's goroutine uses it.
type fanState struct {
	inv     *inventory.Inventory
	invErr  error
	invRead bool

	target    *fanTarget // nil: the single current host
	gatherOff bool
	tokens    map[string][]byte // token files read, by path
}

// fanTarget is a set of hosts addressed together.
type fanTarget struct {
	label string // for the prompt: "@web", "web[1,3]"
	spec  string // as the user gave it
	hosts []*host
}

// inventory returns the host inventory, reading it on first use.
func (s *shell) inventory() (*inventory.Inventory, error) {
	if s.cfg.Inventory != nil {
		return s.cfg.Inventory, nil
	}
	if !s.fan.invRead {
		s.fan.invRead = true
		if s.cfg.InventoryPath != "" {
			s.fan.inv, s.fan.invErr = inventory.Load(s.cfg.InventoryPath)
		} else {
			s.fan.inv, s.fan.invErr = inventory.LoadOptional(DefaultConfigPath())
		}
	}
	return s.fan.inv, s.fan.invErr
}

func (s *shell) fanout() int {
	if s.cfg.Fanout > 0 {
		return s.cfg.Fanout
	}
	if inv, _ := s.inventory(); inv != nil && inv.Fanout > 0 {
		return inv.Fanout
	}
	return DefaultFanout
}

// hostOptions are the dial options of an inventory member: the shell's,
// with the host's own token file, fingerprint, namespace and plaintext.
func (s *shell) hostOptions(m inventory.Member) (transport.Options, error) {
	opts := s.cfg.Options
	if m.Host == nil {
		return opts, nil
	}
	h := m.Host
	if h.TokenFile != "" {
		tok, ok := s.fan.tokens[h.TokenFile]
		if !ok {
			var err error
			if tok, err = transport.ReadTokenFile(h.TokenFile); err != nil {
				return opts, fmt.Errorf("%s: %w", h.Name, err)
			}
			if s.fan.tokens == nil {
				s.fan.tokens = map[string][]byte{}
			}
			s.fan.tokens[h.TokenFile] = tok
		}
		opts.Token = tok
	}
	if h.Fingerprint != "" {
		opts.Trust.Fingerprint = h.Fingerprint
	}
	if h.NS != "" {
		opts.NS = h.NS
	}
	if h.Plaintext {
		opts.Plaintext = true
		opts.Trust = transport.TrustOptions{}
	}
	return opts, nil
}

// resolveTarget turns a target into hosts of the shell, adding (without
// dialing) those it does not have yet.
func (s *shell) resolveTarget(target string) ([]*host, error) {
	inv, err := s.inventory()
	if err != nil {
		return nil, err
	}
	members, err := inv.Resolve(target)
	if err != nil {
		return nil, err
	}
	hosts := make([]*host, 0, len(members))
	for _, m := range members {
		if h := s.findHost(m.Name); h != nil {
			if _, state := h.snapshot(); state == stateClosed {
				s.removeHost(h)
			} else {
				hosts = append(hosts, h)
				continue
			}
		}
		opts, err := s.hostOptions(m)
		if err != nil {
			return nil, err
		}
		h := &host{name: m.Name, addr: withPort(m.Addr), opts: opts, comp: newCompCache(),
			state: stateLost, lostWhy: "not connected yet"}
		s.hosts = append(s.hosts, h)
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// targetLabel is the prompt's name for a set of hosts.
func targetLabel(spec string, hosts []*host) string {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "@") && !strings.Contains(spec, ",") {
		return spec
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.name
	}
	label := inventory.Fold(names)
	if len([]rune(label)) > 32 {
		label = fmt.Sprintf("%d hosts", len(hosts))
	}
	return label
}

// useTarget is `:use TARGET` (and a target given at start) for what the
// plain `:use HOST` does not know: several hosts, an @group, a range, or a
// host of the inventory. It reports false to leave TARGET to :use.
func (s *shell) useTarget(target string) bool {
	if !inventory.IsMulti(target) {
		s.fan.target = nil
		inv, err := s.inventory()
		if err != nil {
			s.printErr(s.r.Notice("config: %v", err))
			return false
		}
		m := inv.Host(target)
		if m == nil {
			return false
		}
		if h := s.findHost(target); h != nil {
			if _, state := h.snapshot(); state != stateClosed && state != stateLost {
				return false
			}
		}
		hosts, err := s.resolveTarget(target)
		if err != nil {
			s.fail("%s", err.Error())
			return true
		}
		s.connectTarget(hosts, false)
		if c, _ := hosts[0].snapshot(); c != nil {
			s.cur = hosts[0]
			if s.cfg.Interactive {
				s.print(s.banner(hosts[0]))
			}
		}
		return true
	}
	hosts, err := s.resolveTarget(target)
	if err != nil {
		s.fail("%s", err.Error())
		return true
	}
	s.fan.target = &fanTarget{label: targetLabel(target, hosts), spec: target, hosts: hosts}
	s.connectTarget(hosts, true)
	for _, h := range hosts { // completion and :hosts follow the first live host
		if _, state := h.snapshot(); state == stateConnected {
			s.cur = h
			break
		}
	}
	return true
}

// connectTarget dials the hosts that are not connected, in parallel, and
// says which could not be reached (and, for several, how many are up).
func (s *shell) connectTarget(hosts []*host, summary bool) {
	results, _ := s.fanRun(hosts, s.timeout, func(context.Context, *host, *transport.Client, *fanResult) error { return nil }, nil)
	var bad []*fanResult
	up := 0
	for _, r := range results {
		if r.status == fanOK {
			up++
		} else {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		s.failed = true
		s.printErr(s.gatherText(bad, false).errs)
	}
	if summary && (s.cfg.Interactive || len(bad) > 0) {
		s.printErr(s.r.Notice("%s: %d of %s connected", targetLabel(s.fan.target.spec, hosts), up, plural(len(hosts), "host")))
	}
}

// fanStatus is how one host's part of a fan-out ended.
type fanStatus int

const (
	fanOK fanStatus = iota
	fanFailed
	fanUnreachable
	fanCancelled
)

func (st fanStatus) String() string {
	return [...]string{"ok", "failed", "unreachable", "cancelled"}[st]
}

// fanResult is one host's outcome.
type fanResult struct {
	idx    int
	h      *host
	name   string
	status fanStatus
	value  transport.Value
	warn   string
	output strings.Builder
	cut    bool   // output beyond maxGatherOutput was dropped
	err    error  // why it failed (a *transport.RemoteError for a failed chunk)
	why    string // unreachable or cancelled: the reason, one line
	dur    time.Duration
	left   time.Duration // with a deadline: what is left of it for the op
	extra  any           // what the op wants to keep (a ping's round trip...)
}

func (r *fanResult) addOutput(text string) {
	if r.output.Len()+len(text) > maxGatherOutput {
		r.cut = true
		text = text[:max(0, maxGatherOutput-r.output.Len())]
	}
	r.output.WriteString(text)
}

// fanOp is the work done on one connected host.
type fanOp func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error

// fanRun runs op on every host at once (dialing those not connected, at
// most fanout at a time) and returns a result per host, in the hosts'
// order, and whether Ctrl-C was pressed. onDone, when set, is called on
// the calling goroutine as each host finishes.
//
// deadline > 0 bounds each host: past it (and a little slack for the
// server to say so itself) a host that has not answered is reported
// unreachable and no longer waited for. After Ctrl-C, hosts have
// cancelWait to confirm.
func (s *shell) fanRun(hosts []*host, deadline time.Duration, op fanOp, onDone func(*fanResult)) ([]*fanResult, bool) {
	return s.fanRunCtx(s.ctx, hosts, deadline, op, onDone)
}

// fanRunCtx is fanRun under parent instead of the shell's context.
func (s *shell) fanRunCtx(parent context.Context, hosts []*host, deadline time.Duration, op fanOp, onDone func(*fanResult)) ([]*fanResult, bool) {
	ctx, release := s.intr.guard(parent)
	n := len(hosts)
	results := make([]*fanResult, n)
	done := make(chan *fanResult, n)
	sem := make(chan struct{}, s.fanout())
	dialBound := s.cfg.DialTimeout
	if deadline > 0 && deadline < dialBound {
		dialBound = deadline
	}
	for i, h := range hosts {
		go func() {
			r := &fanResult{idx: i, h: h, name: h.name}
			defer func() { done <- r }()
			hctx, cancel := ctx, context.CancelFunc(func() {})
			if deadline > 0 {
				hctx, cancel = context.WithTimeout(ctx, deadline+fanSlack)
			}
			defer cancel()
			start := time.Now()
			c, state := h.snapshot()
			var err error
			if state != stateConnected { // dial, at most fanout at a time
				select {
				case sem <- struct{}{}:
					dctx, dcancel := context.WithTimeout(hctx, dialBound)
					c, err = s.fanClient(dctx, h)
					// The dialer's own timer can fire a moment before the
					// context's: both mean the same, and say it one way so
					// that such hosts fold together.
					if dl, _ := dctx.Deadline(); err != nil && hctx.Err() == nil && !time.Now().Before(dl) {
						err = fmt.Errorf("no connection within %s: %w", dialBound, context.DeadlineExceeded)
					}
					dcancel()
					<-sem
				case <-hctx.Done():
					err = hctx.Err()
				}
			}
			if err != nil {
				r.dur = time.Since(start)
				s.classifyDial(ctx, r, err)
				return
			}
			if deadline > 0 {
				// what is left of the deadline for the chunk (a quick dial
				// does not count, so that the server names the deadline given)
				if spent := time.Since(start); spent > 50*time.Millisecond {
					r.left = max(deadline-spent, time.Millisecond)
				}
			}
			t0 := time.Now()
			err = op(hctx, h, c, r)
			r.dur = time.Since(t0)
			classify(ctx, r, err)
		}()
	}
	var hard, after <-chan time.Time
	if deadline > 0 {
		t := time.NewTimer(deadline + fanSlack + 500*time.Millisecond)
		defer t.Stop()
		hard = t.C
	}
	ctxDone := ctx.Done()
	got := 0
wait:
	for got < n {
		select {
		case r := <-done:
			results[r.idx] = r
			got++
			if onDone != nil {
				onDone(r)
			}
		case <-ctxDone:
			ctxDone = nil
			t := time.NewTimer(cancelWait)
			defer t.Stop()
			after = t.C
		case <-hard:
			break wait
		case <-after:
			break wait
		}
	}
	interrupted := release()
	for i, r := range results {
		if r != nil {
			continue
		}
		r = &fanResult{idx: i, h: hosts[i], name: hosts[i].name}
		if ctx.Err() != nil && after != nil {
			r.status, r.why = fanCancelled, "no answer after cancelling"
		} else {
			r.status, r.why = fanUnreachable, fmt.Sprintf("no answer within the deadline (%s)", deadline)
		}
		results[i] = r
		if onDone != nil {
			onDone(r)
		}
	}
	return results, interrupted
}

// fanClient returns h's client, dialing it when it is not connected. It
// never waits for a reconnector: a fan-out does not wait on one host.
func (s *shell) fanClient(ctx context.Context, h *host) (*transport.Client, error) {
	c, state := h.snapshot()
	switch state {
	case stateConnected:
		return c, nil
	case stateClosed:
		return nil, fmt.Errorf("%s is closed — :connect %s", h.name, h.addr)
	}
	c, refused, err := s.connect(ctx, h)
	if err != nil {
		h.mu.Lock()
		if h.state == stateLost {
			h.lostWhy = connMsg(err)
		}
		h.mu.Unlock()
		return nil, err
	}
	if !s.install(h, c, refused) {
		return nil, fmt.Errorf("%s is closed", h.name)
	}
	return c, nil
}

// classifyDial records why a host could not be reached.
func (s *shell) classifyDial(ctx context.Context, r *fanResult, err error) {
	if ctx.Err() != nil {
		r.status, r.why = fanCancelled, "cancelled before it was reached"
		if errors.Is(err, transport.ErrFirstCancelled) {
			// rshell exec's chunk leaves with the hello (transport.Options.First).
			r.why = "cancelled while connecting (its chunk, already sent, was cancelled too)"
		}
		return
	}
	r.status, r.err = fanUnreachable, err
	if errors.Is(err, context.DeadlineExceeded) {
		r.why = err.Error()
		if i := strings.Index(r.why, ": "+context.DeadlineExceeded.Error()); i >= 0 {
			r.why = r.why[:i]
		}
		return
	}
	r.why = reason(r.h, err)
}

// classify sorts an op's error into a status.
func classify(ctx context.Context, r *fanResult, err error) {
	var re *transport.RemoteError
	r.err = err
	switch {
	case err == nil:
		r.status = fanOK
	case errors.As(err, &re) && re.Kind() == transport.KindCancelled:
		r.status = fanCancelled
	case errors.As(err, &re):
		r.status = fanFailed
	case errors.Is(err, transport.ErrConnLost):
		r.status, r.why = fanUnreachable, reason(r.h, err)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		r.status = fanCancelled
	case errors.Is(err, context.DeadlineExceeded):
		r.status, r.why = fanUnreachable, "no answer within the deadline"
	default:
		r.status = fanFailed
	}
}

// reason is a connection error as one short line without the host's
// address (the host list says which hosts), so that hosts that failed
// the same way fold together.
func reason(h *host, err error) string {
	msg := connMsg(err)
	msg = strings.TrimSuffix(msg, ": "+transport.ErrConnLost.Error())
	a := h.addr
	for _, p := range [][2]string{
		{"cannot reach " + a + ": ", ""},
		{"lost " + a + " (", "lost ("},
		{"connect to " + a + ": ", ""},
		{"attach to " + a + ": ", ""},
		{"TLS handshake with " + a + " ", "TLS handshake "},
		{"first contact with " + a + " ", "first contact "},
		{" " + a, ""},
	} {
		msg = strings.ReplaceAll(msg, p[0], p[1])
	}
	if strings.HasPrefix(msg, "lost (") && strings.HasSuffix(msg, ")") {
		msg = "lost: " + msg[len("lost ("):len(msg)-1]
	}
	return msg
}

// fanChunk runs one chunk on every host of the target and shows the
// results. It reports whether the chunk succeeded everywhere.
func (s *shell) fanChunk(req transport.EvalRequest) bool {
	t := s.fan.target
	if req.Deadline == 0 {
		req.Deadline = s.timeout
	}
	deadline := req.Deadline
	stream := s.fan.gatherOff
	var closed atomic.Bool
	var lines *lineStreams
	if stream {
		lines = &lineStreams{s: s, closed: &closed, partial: map[string]string{}}
	}
	op := func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		rq := req
		if r.left > 0 {
			rq.Deadline = r.left
		}
		s.beginChunk(h)
		res, err := c.Exec(ctx, rq, func(text string) {
			r.addOutput(text)
			if lines != nil {
				lines.write(h.name, text)
			}
		})
		s.endChunk(h, c)
		if err == nil {
			r.value, r.warn = res.Value, res.Warn
			h.comp.clearNames()
		} else if errors.Is(err, transport.ErrConnLost) {
			s.markLost(h, c, lostReason(err), res.Seq)
		}
		return err
	}
	var onDone func(*fanResult)
	if stream {
		onDone = func(r *fanResult) {
			lines.flush(r.name)
			s.printStreamed(r)
		}
	}
	results, interrupted := s.fanRun(t.hosts, deadline, op, onDone)
	closed.Store(true)
	if !stream {
		g := s.gatherText(results, true)
		s.print(g.ok)
		s.printErr(g.errs)
	}
	s.printErr(s.summary(results))
	if interrupted && !s.cfg.Interactive {
		s.interrupted, s.quit = true, true
	}
	for _, r := range results {
		if r.status != fanOK {
			return false
		}
	}
	return true
}

// lineStreams prefixes streamed print() output with its host, a whole line
// at a time.
type lineStreams struct {
	s       *shell
	closed  *atomic.Bool
	mu      sync.Mutex
	partial map[string]string
}

func (l *lineStreams) write(host, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return
	}
	text = l.partial[host] + text
	i := strings.LastIndexByte(text, '\n')
	if i < 0 {
		l.partial[host] = text
		return
	}
	l.partial[host] = text[i+1:]
	var b strings.Builder
	for _, line := range strings.Split(text[:i], "\n") {
		b.WriteString(l.s.r.paint(styleHeader, host+":") + " " + l.s.r.Output(line) + "\n")
	}
	l.s.print(b.String())
}

func (l *lineStreams) flush(host string) {
	l.mu.Lock()
	rest := l.partial[host]
	delete(l.partial, host)
	l.mu.Unlock()
	if rest != "" {
		l.s.print(l.s.r.paint(styleHeader, host+":") + " " + l.s.r.Output(rest) + "\n")
	}
}

// printStreamed shows how one host ended, as it ends (:gather off).
func (s *shell) printStreamed(r *fanResult) {
	label := s.r.paint(styleHeader, r.name+":")
	switch r.status {
	case fanOK:
		if r.warn != "" {
			s.printErr(label + " " + s.r.Notice("%s", r.warn))
		}
		if !r.value.IsNone() {
			s.print(label + " " + indentRest(s.r.Value(r.value)))
		}
	default:
		s.printErr(s.failureText(r, r.name, false))
	}
}

// command registrations: kept here so that commands.go's table stays the
// one place that lists the single-host commands; init runs after its init
// (files initialise in name order).
func init() {
	commands = append(commands,
		command{name: "diff", args: "NAME [TARGET]", summary: "compare a value across the target hosts and show only what differs",
			help: "Without TARGET, the hosts of the current target (:use @group). Dict keys, struct fields and list items are\n" +
				"compared one by one; each difference lists which hosts have which value.",
			run: cmdDiff, complete: completeTargets(1)},
		command{name: "gather", args: "[on|off]", summary: "with several hosts: gather equal results under one host list (on), or stream lines as they come (off)",
			run: cmdGather, complete: func(_ *shell, n int, word string) []string {
				if n != 0 {
					return nil
				}
				return filterPrefix([]string{"on", "off"}, word)
			}},
	)
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	for i := range commands {
		c := &commands[i]
		switch c.name {
		case "use":
			c.args = strings.TrimSuffix(c.args, "]") + "|HOST,HOST...|@GROUP]"
			c.help = strings.TrimSpace(c.help + "\nSeveral hosts (web1,web3 or web[1-3,5]) or a group of the config file (@web) make each chunk run on all\n" +
				"of them at once; the results are gathered (:gather). Groups and hosts come from " + DefaultConfigPath() + ".")
			c.complete = completeTargets(0)
		case "load":
			c.run = fanAware(c.run, fanLoad)
		case "reset":
			c.run = fanAware(c.run, fanReset)
		case "ping":
			c.run = fanAware(c.run, fanPing)
		case "ns", "get", "copy", "upload", "download", "sessions":
			c.run = fanAware(c.run, singleOnly(c.name))
		}
	}
}

// fanAware runs multi instead of single while the target is several hosts.
func fanAware(single, multi func(*shell, []string)) func(*shell, []string) {
	return func(s *shell, args []string) {
		if s.fan.target != nil {
			multi(s, args)
			return
		}
		single(s, args)
	}
}

func singleOnly(name string) func(*shell, []string) {
	return func(s *shell, _ []string) {
		s.fail(":%s works on one host — the target is %s: :use HOST first", name, s.fan.target.label)
	}
}

// completeTargets completes host names, @groups of the inventory and the
// shell's hosts, after the last comma of a list.
func completeTargets(arg int) func(*shell, int, string) []string {
	return func(s *shell, n int, word string) []string {
		if n != arg {
			return nil
		}
		head := ""
		if i := strings.LastIndexByte(word, ','); i >= 0 {
			head, word = word[:i+1], word[i+1:]
		}
		cands := s.hostNames()
		if inv, err := s.inventory(); err == nil {
			cands = append(cands, inv.HostNames()...)
			for _, g := range inv.GroupNames() {
				cands = append(cands, "@"+g)
			}
		}
		seen := map[string]bool{}
		var out []string
		for _, c := range filterPrefix(cands, word) {
			if !seen[c] {
				seen[c] = true
				out = append(out, head+c)
			}
		}
		return addSpace(out)
	}
}

func cmdGather(s *shell, args []string) {
	switch {
	case len(args) == 0:
		if s.fan.gatherOff {
			s.print("gather: off (lines are streamed, prefixed by host)\n")
		} else {
			s.print("gather: on (equal results are shown once, under their hosts)\n")
		}
	case len(args) == 1 && args[0] == "on":
		s.fan.gatherOff = false
	case len(args) == 1 && args[0] == "off":
		s.fan.gatherOff = true
	default:
		s.usage("gather")
	}
}

// fanLoad is :load on several hosts.
func fanLoad(s *shell, args []string) {
	if len(args) != 1 {
		s.usage("load")
		return
	}
	src, err := os.ReadFile(args[0])
	if err != nil {
		s.fail("load: %s", localErr(err))
		return
	}
	base := filepath.Base(args[0])
	t := s.fan.target
	results, interrupted := s.fanRun(t.hosts, s.timeout, func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		rq := transport.EvalRequest{Src: string(src), File: base, Deadline: r.left}
		s.beginChunk(h)
		_, err := c.Exec(ctx, rq, r.addOutput)
		s.endChunk(h, c)
		h.comp.clearNames()
		return err
	}, nil)
	g := s.gatherText(results, false)
	s.print(g.ok)
	s.printErr(g.errs)
	s.finishFan(results, interrupted, "loaded "+base)
}

// fanReset is :reset on several hosts.
func fanReset(s *shell, args []string) {
	if len(args) != 0 {
		s.usage("reset")
		return
	}
	results, interrupted := s.fanRun(s.fan.target.hosts, 30*time.Second, func(ctx context.Context, h *host, c *transport.Client, _ *fanResult) error {
		err := c.Reset(ctx)
		h.comp.clear()
		return err
	}, nil)
	s.printErr(s.gatherText(results, false).errs)
	s.finishFan(results, interrupted, "namespace cleared")
}

// fanPing is :ping on several hosts: the spread of their round trips.
func fanPing(s *shell, args []string) {
	if len(args) > 0 {
		s.usage("ping")
		return
	}
	results, interrupted := s.fanRun(s.fan.target.hosts, 10*time.Second, func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		d, err := c.Ping(ctx)
		if err == nil {
			r.extra = d
			h.mu.Lock()
			h.rtt = d
			h.mu.Unlock()
		}
		return err
	}, nil)
	var rtts []time.Duration
	slowest := ""
	for _, r := range results {
		if d, ok := r.extra.(time.Duration); ok && r.status == fanOK {
			if len(rtts) == 0 || d > rtts[len(rtts)-1] {
				slowest = r.name
			}
			rtts = append(rtts, d)
			sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
		}
	}
	if len(rtts) > 0 {
		s.print(fmt.Sprintf("%s: min %s, median %s, max %s (%s)\n", plural(len(rtts), "host"),
			fmtDuration(rtts[0]), fmtDuration(rtts[len(rtts)/2]), fmtDuration(rtts[len(rtts)-1]), slowest))
	}
	s.printErr(s.gatherText(results, false).errs)
	if interrupted && !s.cfg.Interactive {
		s.interrupted, s.quit = true, true
	}
	for _, r := range results {
		if r.status != fanOK {
			s.failed = true
		}
	}
}

// finishFan ends a fan-out command: the counts line, and failure marks.
func (s *shell) finishFan(results []*fanResult, interrupted bool, what string) {
	bad := false
	for _, r := range results {
		bad = bad || r.status != fanOK
	}
	if bad {
		s.failed = true
		s.printErr(s.summary(results))
	} else if s.cfg.Interactive {
		s.print(fmt.Sprintf("%s on %s\n", what, plural(len(results), "host")))
	}
	if interrupted && !s.cfg.Interactive {
		s.interrupted, s.quit = true, true
	}
}

// startTarget opens the shell on the target it was started with. It
// reports false when the shell cannot start: a bad target, or a single
// host that could not be reached. Of several hosts, those that answer are
// enough: the others are reported with each chunk.
func (s *shell) startTarget(target string) bool {
	if !s.useTarget(target) {
		name, addr := splitHostSpec(target)
		h, err := s.addHost(name, addr, s.cfg.Options)
		if err != nil {
			s.printErr(s.r.Fail("%s", connMsg(err)))
			return false
		}
		s.cur = h
		return true
	}
	return s.fan.target != nil || s.cur != nil
}
