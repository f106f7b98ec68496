package server

import (
	"fmt"
	"github.com/rshell/rshell/session"
	"github.com/rshell/rshell/transport"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// chunkSet is every chunk running on the server, so the memory watchdog
// can stop them all.
type chunkSet struct {
	mu sync.Mutex
	m  map[*running]struct{}
}

func (c *chunkSet) add(r *running) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[*running]struct{}{}
	}
	c.m[r] = struct{}{}
	c.mu.Unlock()
}

func (c *chunkSet) remove(r *running) {
	c.mu.Lock()
	delete(c.m, r)
	c.mu.Unlock()
}

func (c *chunkSet) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *chunkSet) cancelAll(cause error) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for r := range c.m {
		r.cancelSeq(0, cause, false)
		n++
	}
	return n
}

// memoryInUse is the Go runtime's count of memory mapped and not released.
func memoryInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// watchMemory cancels every running chunk when the process's memory
// nears cfg.MaxMemory, until shutdown. It also sets the GC's soft limit
// so that the collector works harder before the watchdog has to act.
func (s *Server) watchMemory() {
	defer s.wg.Done()
	limit := uint64(s.cfg.MaxMemory)
	debug.SetMemoryLimit(int64(limit * 8 / 10))
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if use := memoryInUse(); use > limit*9/10 {
				if n := s.chunks.cancelAll(&session.StopCause{Kind: transport.KindLimit, What: memoryMessage(s.cfg.MaxMemory)}); n > 0 {
					s.log.Warn("memory near the limit: cancelled running chunks", "in_use_mib", use>>20, "max_memory_mib", limit>>20, "chunks", n)
				}
				debug.FreeOSMemory()
			}
		case <-s.baseCtx.Done():
			return
		}
	}
}

func memoryMessage(limit int64) string {
	return fmt.Sprintf("stopped: the server came close to its memory limit (--max-memory %d MiB)", limit>>20)
}
