package server

import (
	"fmt"
	"time"
)

// restoreSessions loads every stored session into the registry, detached,
// so that its TTL counts from now.
func (s *Server) restoreSessions() error {
	stored, err := s.store.load()
	if err != nil {
		return fmt.Errorf("read the session store: %w", err)
	}
	now := time.Now()
	for _, st := range stored {
		h := &hosted{id: st.id, secret: st.meta.Secret, ns: st.meta.NS, created: st.meta.Created, opts: s.cfg.Session, detached: now}
		sess := h.session()
		h.notRestored = sess.Restore(st.records, st.sources)
		sess.Changes() // the store already holds all of it
		if st.meta.Last != nil {
			h.last = *st.meta.Last
			if h.last.State == "running" {
				h.last.State = "interrupted"
			}
		}
		s.reg.add(h)
		s.log.Info("session restored", "session", shortID(h.id), "ns", h.ns, "names", len(st.records), "not_restored", len(h.notRestored))
		for _, n := range h.notRestored {
			s.log.Warn("could not restore", "session", shortID(h.id), "name", n)
		}
	}
	return nil
}

// persist writes what a chunk (or put, or reset) changed, synced, before
// the client is answered. It returns a warning for the user when the
// store could not be written: the result still comes back.
func (s *Server) persist(h *hosted) string {
	if s.store == nil {
		return ""
	}
	d := h.session().Changes()
	if d.Empty() {
		// Nothing to make durable: no disk write, no sync. The stored
		// last-chunk record catches up with the next change.
		return ""
	}
	if h.isDropped() {
		return "" // a dropped session (ended, or expired) is not written back
	}
	if err := s.store.save(h, d); err != nil {
		s.log.Error("could not write the session store", "session", shortID(h.id), "err", err)
		return fmt.Sprintf("not durable: the server could not save this session (%v); it is kept in memory only", err)
	}
	return ""
}
