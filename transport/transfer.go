package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"time"
)

// Upload streams r (size bytes, -1 if unknown) to remotePath on the server,
// which checks the SHA-256 and writes the file only when it matches.
// progress, if not nil, is called with the bytes sent so far.
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64, remotePath string, progress func(int64)) error {
	s, err := c.mux.Open()
	if err != nil {
		return c.lost(err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	if err := WriteMsg(s, &Msg{T: TUpload, Path: remotePath, Size: size}, c.opts.MaxFrame); err != nil {
		return c.errandErr(ctx, err)
	}
	h := sha256.New()
	buf := make([]byte, DataChunk)
	var sent int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			if err := WriteMsg(s, &Msg{T: TData, Data: buf[:n]}, c.opts.MaxFrame); err != nil {
				return c.errandErr(ctx, err)
			}
			sent += int64(n)
			if progress != nil {
				progress(sent)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("upload %s: read local file: %w", remotePath, rerr)
		}
	}
	if err := WriteMsg(s, &Msg{T: TEnd, Size: sent, SHA256: h.Sum(nil)}, c.opts.MaxFrame); err != nil {
		return c.errandErr(ctx, err)
	}
	m, err := ReadMsg(bufio.NewReader(s), c.opts.MaxFrame)
	if err != nil {
		return c.errandErr(ctx, err)
	}
	switch m.T {
	case TOK:
		return nil
	case TError:
		return remoteErr(m)
	}
	return fmt.Errorf("upload: %w: unexpected %q", ErrMalformed, m.T)
}

// Download streams remotePath from the server into w and checks its
// SHA-256. It returns the number of bytes written.
func (c *Client) Download(ctx context.Context, remotePath string, w io.Writer, progress func(got, total int64)) (int64, error) {
	h := sha256.New()
	var got, total int64
	end, err := c.errand(ctx, &Msg{T: TDownload, Path: remotePath}, TEnd, func(m *Msg) error {
		switch m.T {
		case TData:
			if _, err := w.Write(m.Data); err != nil {
				return fmt.Errorf("download %s: write local file: %w", remotePath, err)
			}
			h.Write(m.Data)
			got += int64(len(m.Data))
			if progress != nil {
				progress(got, total)
			}
			return nil
		case TOK: // header: the size to expect
			total = m.Size
			return nil
		}
		return fmt.Errorf("download: %w: unexpected %q", ErrMalformed, m.T)
	})
	if err != nil {
		return got, err
	}
	if end.Size != got || !bytes.Equal(end.SHA256, h.Sum(nil)) {
		return got, fmt.Errorf("download %s: checksum mismatch (got %d of %d bytes) — try again", remotePath, got, end.Size)
	}
	return got, nil
}
