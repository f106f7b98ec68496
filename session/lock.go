package session

import "context"

// chunkLock is the session's mutex: a chunk holds it while it runs. Unlike
// sync.Mutex, a chunk waiting for it (behind another client's chunk in a
// shared namespace, or an orphaned chunk of a lost connection) can be
// cancelled while it waits.
type chunkLock struct{ ch chan struct{} }

func newChunkLock() chunkLock { return chunkLock{ch: make(chan struct{}, 1)} }

func (l chunkLock) Lock()   { l.ch <- struct{}{} }
func (l chunkLock) Unlock() { <-l.ch }

func (l chunkLock) TryLock() bool {
	select {
	case l.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// LockCtx waits for the lock or for ctx to be done.
func (l chunkLock) LockCtx(ctx context.Context) error {
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
