package server

// BreakStoreForTest closes the durable store under a running server, so
// that every later write to it fails.
func BreakStoreForTest(s *Server) { _ = s.store.db.Close() }
