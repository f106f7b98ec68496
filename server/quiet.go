package server

import (
	"runtime/debug"
	"time"
)

// An idle server gives memory back. After a burst (many connections
// accepted, big chunks run) the garbage of that burst stays mapped until
// the next collection, which a server with nothing to do never starts: up
// to as much again as the memory in use, held for as long as the server
// stays quiet. So once nothing new has happened for quietCheck and no chunk
// is running, a server whose memory grew by quietGrowth since it last
// looked collects and returns the freed pages to the OS. That costs one
// full collection at a moment when no client is waiting for anything.
const (
	quietCheck  = time.Second
	quietGrowth = 16 << 20
)

// busy marks the server not quiet: a connection or a chunk started.
func (s *Server) busy() { s.activity.Add(1) }

func (s *Server) quietLoop() {
	defer s.wg.Done()
	t := time.NewTicker(quietCheck)
	defer t.Stop()
	seen := s.activity.Load()
	freedAt, base := seen, memoryInUse()
	for {
		select {
		case <-t.C:
		case <-s.baseCtx.Done():
			return
		}
		a := s.activity.Load()
		if a != seen {
			seen = a // busy in the last interval: look again at the next
			continue
		}
		if a == freedAt || s.chunks.count() > 0 || memoryInUse() < base+quietGrowth {
			continue
		}
		debug.FreeOSMemory()
		freedAt, base = a, memoryInUse()
	}
}
