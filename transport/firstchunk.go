package transport

import (
	"context"
	"errors"
	"time"
)

// A first chunk (Options.First) rides in the same flight as the hello and
// the attach: see Dial, and PROTOCOL.md.

// ErrFirstCancelled is in the chain of Dial's error when Options.First had
// been sent before the connect was given up (ctx done), and a cancel was
// sent after it: the chunk may have started.
var ErrFirstCancelled = errors.New("the chunk sent with the connect was cancelled")

// firstCancelled is err, also matching ErrFirstCancelled; its message is
// err's.
type firstCancelled struct{ error }

func (e firstCancelled) Unwrap() []error { return []error{e.error, ErrFirstCancelled} }

// abandonFirst cancels Options.First when Dial gives up because ctx is
// done after sending it: the chunk may have started, and whoever cancelled
// the connect wants it stopped. Best effort, within 100 ms. It returns err,
// marked with ErrFirstCancelled when it sent the cancel.
func (c *Client) abandonFirst(ctx context.Context, err error) error {
	if c.first == 0 || ctx.Err() == nil {
		return err
	}
	_ = c.conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
	_ = WriteMsg(c.eval, &Msg{T: TCancel, Seq: c.first}, 0)
	return firstCancelled{err}
}

// sendFirst sends Options.First. One too big to send is not sent, and
// not a connection error: FirstPending is then false, and Exec of the
// same chunk reports it, as for any chunk.
func (c *Client) sendFirst() error {
	m := c.chunkMsg(context.Background(), *c.opts.First)
	if err := WriteMsg(c.eval, m, c.opts.MaxFrame); err != nil {
		c.seq--
		if errors.Is(err, ErrFrameTooLarge) {
			return nil
		}
		return err
	}
	c.first = m.Seq
	return nil
}

// FirstResult waits for the outcome of Options.First, as Exec does for
// its chunk (cancelling ctx cancels the chunk).
func (c *Client) FirstResult(ctx context.Context, onOutput func(string)) (Result, error) {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	if c.eval == nil {
		return Result{}, ErrClosed
	}
	seq := c.first
	if seq == 0 {
		return Result{}, errors.New("no first chunk to wait for: Options.First was not set, or its result was read")
	}
	c.first = 0
	return c.await(ctx, seq, onOutput)
}

// FirstPending reports whether Options.First was sent and its outcome not
// yet read.
func (c *Client) FirstPending() bool {
	c.evalMu.Lock()
	defer c.evalMu.Unlock()
	return c.first != 0
}
