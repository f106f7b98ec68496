package server

// BreakStoreForTest closes the durable store under a running server, so
// that every later write to it fails.
func BreakStoreForTest(s *Server) { _ = s.store.db.Close() }

// MemoryInUseForTest is the process's memory mapped and not released.
func MemoryInUseForTest() uint64 { return memoryInUse() }

// SettledForTest is how many connections have been open for settleAge.
func SettledForTest(s *Server) int32 { return s.settled.Load() }
