package server

import (
	"fmt"
	"io"

	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
)

var knownErrands = map[string]bool{
	transport.TComplete: true, transport.TNames: true, transport.TGet: true, transport.TPut: true,
	transport.TReset: true, transport.TUpload: true, transport.TDownload: true, transport.TForget: true,
}

// serveErrand answers one side request on its own stream.
func (c *conn) serveErrand(st *mux.Stream, r io.Reader, m *transport.Msg) {
	switch m.T {
	case transport.TPing:
		_ = c.write(st, &transport.Msg{T: transport.TPong})
		return
	case transport.TInfo:
		info := c.srv.info
		_ = c.write(st, &transport.Msg{T: transport.TInfo, Info: &info})
		return
	case transport.TSessions:
		_ = c.write(st, &transport.Msg{T: transport.TSessions, List: c.srv.reg.list(c.attached())})
		return
	}
	if !knownErrands[m.T] {
		c.srv.log.Warn("unknown request", "peer", c.peer, "type", m.T)
		_ = c.write(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("unknown request %q", m.T)))
		return
	}
	h := c.attached()
	if h == nil {
		_ = c.write(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("%q before attach: open the eval stream and attach first", m.T)))
		return
	}
	switch m.T {
	case transport.TComplete:
		_ = c.write(st, &transport.Msg{T: transport.TCompletions, Names: h.session().Complete(m.Prefix)})
	case transport.TNames:
		_ = c.write(st, &transport.Msg{T: transport.TNames, Items: h.session().Names()})
	case transport.TGet:
		v, ei := h.session().Get(m.Name)
		if ei != nil {
			_ = c.write(st, &transport.Msg{T: transport.TError, Err: ei})
			return
		}
		_ = c.write(st, &transport.Msg{T: transport.TValue, Value: v})
	case transport.TPut:
		v, err := transport.DecodeValue(m.Value, c.srv.cfg.Session.MaxDepth)
		if err != nil {
			_ = c.write(st, errMsg(0, transport.KindProtocol, err.Error()))
			return
		}
		if ei := h.session().Put(m.Name, v); ei != nil {
			_ = c.write(st, &transport.Msg{T: transport.TError, Err: ei})
			return
		}
		_ = c.write(st, &transport.Msg{T: transport.TOK, Warn: c.srv.persist(h)})
	case transport.TForget:
		if h.ns != "" {
			_ = c.write(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("namespace %q is shared: one client does not end it (it is dropped once detached for the session TTL)", h.ns)))
			return
		}
		h.mu.Lock()
		h.forget = true
		h.mu.Unlock()
		_ = c.write(st, &transport.Msg{T: transport.TOK})
	case transport.TReset:
		h.session().Reset()
		_ = c.write(st, &transport.Msg{T: transport.TOK, Warn: c.srv.persist(h)})
	case transport.TUpload:
		c.serveUpload(st, r, m)
	case transport.TDownload:
		c.serveDownload(st, m)
	}
}
