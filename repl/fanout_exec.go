package repl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rshell/rshell/transport"
)

// Job is one chunk for Exec.
type Job struct {
	Src  string
	File string // the chunk's name in tracebacks; "" lets each server number it
	JSON bool   // JSON lines instead of gathered text
}

// Exit statuses of Exec.
const (
	ExitOK          = 0
	ExitFailed      = 1 // the chunk failed (or was cancelled) on some host
	ExitUnreachable = 2 // some host could not be reached (also: a bad target)
	ExitInterrupted = 130
)

// Exec runs one chunk on every host of cfg.Target at once, non-interactively,
// and prints the results gathered (as the shell does with several hosts) or,
// with job.JSON, as JSON lines, one per host as it finishes:
//
//	{"host": "web1", "address": "10.0.0.1:18812", "ok": true, "status": "ok",
//	 "value": 42, "repr": "42", "output": "", "error": null, "duration_ms": 0.8}
//
// value is the result as JSON (as :get writes it), null when it has no JSON
// form (then value_error says why; repr always has it as Starlark). status
// is ok, failed, unreachable or cancelled. It returns ExitOK when every
// host succeeded, ExitUnreachable when some host could not be reached,
// else ExitFailed when the chunk failed anywhere; ExitInterrupted after
// Ctrl-C.
func Exec(ctx context.Context, cfg Config, job Job) int {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Err == nil {
		cfg.Err = os.Stderr
	}
	cfg.Interactive = false
	s := newShell(ctx, cfg)
	defer s.close()
	hosts, err := s.resolveTarget(cfg.Target)
	if err != nil {
		s.printErr(s.r.Fail("%s", err.Error()))
		return ExitUnreachable
	}
	req := transport.EvalRequest{Src: job.Src, File: job.File, Deadline: cfg.Timeout}
	// The chunk goes out with each host's hello and attach: a round trip
	// sooner than after the connection is made.
	s.first = &req
	var onDone func(*fanResult)
	if job.JSON {
		onDone = func(r *fanResult) { s.print(s.jsonLine(r)) }
	}
	op := func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		rq := req
		if r.left > 0 {
			rq.Deadline = r.left
		}
		s.beginChunk(h)
		var res transport.Result
		var err error
		if c.FirstPending() {
			res, err = c.FirstResult(ctx, r.addOutput)
		} else {
			res, err = c.Exec(ctx, rq, r.addOutput)
		}
		s.endChunk(h, c)
		if err == nil {
			r.value, r.warn = res.Value, res.Warn
		}
		return err
	}
	results, interrupted := s.fanRun(hosts, cfg.Timeout, op, onDone)
	if !job.JSON {
		g := s.gatherText(results, true)
		s.print(g.ok)
		s.printErr(g.errs)
		s.printErr(s.summary(results))
	}
	if interrupted || ctx.Err() != nil {
		return ExitInterrupted
	}
	s.endSessions(results)
	code := ExitOK
	for _, r := range results {
		switch r.status {
		case fanUnreachable:
			return ExitUnreachable
		case fanFailed, fanCancelled:
			code = ExitFailed
		}
	}
	return code
}

// endSessions asks each host where the chunk ran to its end to drop the
// session Exec made there, instead of keeping it for the session TTL in
// case someone resumes it: nobody will. Sessions Exec did not make (a named
// namespace, a resumed session) are left alone. Best effort, within a
// second: a host that does not answer (or an older server, which refuses
// the request) keeps the session until its TTL.
func (s *shell) endSessions(results []*fanResult) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range results {
		if (r.status != fanOK && r.status != fanFailed) || r.h.opts.NS != "" || r.h.opts.Session != "" {
			continue
		}
		if c, _ := r.h.snapshot(); c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.EndSession(ctx)
			}()
		}
	}
	wg.Wait()
}

// jsonResult is one line of Exec's JSON output.
type jsonResult struct {
	Host       string          `json:"host"`
	Address    string          `json:"address"`
	OK         bool            `json:"ok"`
	Status     string          `json:"status"`
	Value      json.RawMessage `json:"value"`
	ValueError string          `json:"value_error,omitempty"`
	Repr       string          `json:"repr,omitempty"`
	Output     string          `json:"output"`
	Error      *string         `json:"error"`
	ErrorKind  string          `json:"error_kind,omitempty"`
	Traceback  string          `json:"traceback,omitempty"`
	DurationMS float64         `json:"duration_ms"`
}

func (s *shell) jsonLine(r *fanResult) string {
	j := jsonResult{
		Host: r.name, Address: r.h.addr, OK: r.status == fanOK, Status: r.status.String(),
		Value: json.RawMessage("null"), Output: r.output.String(),
		DurationMS: float64(r.dur.Microseconds()) / 1000,
	}
	switch r.status {
	case fanOK:
		j.Repr = strings.TrimRight(s.plain().Value(r.value), "\n")
		if data, err := toJSON(r.value, "value"); err != nil {
			j.ValueError = err.Error()
		} else {
			var b bytes.Buffer
			if err := json.Compact(&b, data); err == nil {
				j.Value = b.Bytes()
			}
		}
	default:
		msg := r.why
		var re *transport.RemoteError
		switch {
		case asRemote(r.err, &re):
			msg, j.ErrorKind = re.Error(), re.Kind()
			if len(re.Info.Frames) > 0 {
				j.Traceback = re.Traceback()
			}
		case msg == "" && r.err != nil:
			msg = errText(r.err)
		case msg == "":
			msg = r.status.String()
		}
		j.Error = &msg
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil { // strings not valid UTF-8 are replaced; nothing else fails
		return ""
	}
	return b.String()
}

// Group is a set of hosts driven together, outside the shell: programs and
// benchmarks use it. It connects its hosts when opened and keeps them.
type Group struct {
	s     *shell
	hosts []*host
}

// HostResult is how one host's part of Group.Exec ended.
type HostResult struct {
	Host     string
	Status   string // ok, failed, unreachable, cancelled
	Value    transport.Value
	Output   string
	Err      error
	Duration time.Duration
}

// OpenGroup resolves cfg.Target and connects its hosts in parallel (at
// most cfg.Fanout at a time). Hosts that cannot be reached are reported by
// each Exec, not here; OpenGroup fails only for a bad target.
func OpenGroup(ctx context.Context, cfg Config) (*Group, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Err == nil {
		cfg.Err = io.Discard
	}
	cfg.Interactive = false
	s := newShell(ctx, cfg)
	hosts, err := s.resolveTarget(cfg.Target)
	if err != nil {
		s.close()
		return nil, err
	}
	s.fanRun(hosts, 0, func(context.Context, *host, *transport.Client, *fanResult) error { return nil }, nil)
	return &Group{s: s, hosts: hosts}, nil
}

// Exec runs src on every host at once and returns each host's result, in
// the group's order.
func (g *Group) Exec(ctx context.Context, src string) []HostResult {
	req := transport.EvalRequest{Src: src}
	results, _ := g.s.fanRunCtx(ctx, g.hosts, g.s.cfg.Timeout, func(ctx context.Context, h *host, c *transport.Client, r *fanResult) error {
		rq := req
		if r.left > 0 {
			rq.Deadline = r.left
		}
		res, err := c.Exec(ctx, rq, r.addOutput)
		r.value = res.Value
		return err
	}, nil)
	out := make([]HostResult, len(results))
	for i, r := range results {
		out[i] = HostResult{Host: r.name, Status: r.status.String(), Value: r.value, Output: r.output.String(), Err: r.err, Duration: r.dur}
		if r.err == nil && r.status != fanOK {
			out[i].Err = errors.New(r.why)
		}
	}
	return out
}

// Close closes the group's connections.
func (g *Group) Close() { g.s.close() }
