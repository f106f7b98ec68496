package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rshell/rshell/transport"
	"github.com/rshell/rshell/transport/mux"
)

func (c *conn) fileErr(st *mux.Stream, op, path string, err error) {
	kind := transport.KindIO
	if errors.Is(err, os.ErrNotExist) {
		kind = transport.KindNotFound
	}
	_ = c.write(st, errMsg(0, kind, fmt.Sprintf("%s %s: %v", op, path, unwrapPathErr(err))))
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// serveUpload receives data frames into a temporary file beside the
// target and renames it into place only when size and SHA-256 match.
func (c *conn) serveUpload(st *mux.Stream, r io.Reader, m *transport.Msg) {
	s := c.srv
	if s.cfg.Session.Sandbox {
		_ = c.write(st, errMsg(0, transport.KindLimit, "file transfer is disabled: the server runs with --sandbox"))
		return
	}
	if m.Size > s.cfg.MaxUpload {
		_ = c.write(st, errMsg(0, transport.KindLimit, fmt.Sprintf("upload of %d bytes is over the server's %d-byte limit (--max-upload)", m.Size, s.cfg.MaxUpload)))
		return
	}
	path := m.Path
	tmp, err := os.CreateTemp(filepath.Dir(path), ".rshell-upload-*")
	if err != nil {
		c.fileErr(st, "upload to", path, err)
		return
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	var n int64
	for {
		f, err := transport.ReadMsg(r, s.cfg.MaxFrame)
		if err != nil {
			c.protocolError(st, err)
			return
		}
		switch f.T {
		case transport.TData:
			n += int64(len(f.Data))
			if n > s.cfg.MaxUpload {
				_ = c.write(st, errMsg(0, transport.KindLimit, fmt.Sprintf("upload is over the server's %d-byte limit (--max-upload)", s.cfg.MaxUpload)))
				return
			}
			h.Write(f.Data)
			if _, err := tmp.Write(f.Data); err != nil {
				c.fileErr(st, "upload to", path, err)
				return
			}
			continue
		case transport.TEnd:
			if f.Size != n || !bytes.Equal(f.SHA256, h.Sum(nil)) {
				_ = c.write(st, errMsg(0, transport.KindIO, fmt.Sprintf("upload %s: checksum mismatch (received %d of %d bytes) — nothing was written", path, n, f.Size)))
				return
			}
			if err := tmp.Sync(); err != nil {
				c.fileErr(st, "upload to", path, err)
				return
			}
			tmp.Close()
			if err := os.Rename(tmp.Name(), path); err != nil {
				c.fileErr(st, "upload to", path, err)
				return
			}
			s.log.Info("file uploaded", "peer", c.peer, "path", path, "bytes", n)
			_ = c.write(st, &transport.Msg{T: transport.TOK, Size: n, SHA256: h.Sum(nil)})
			return
		default:
			_ = c.write(st, errMsg(0, transport.KindProtocol, fmt.Sprintf("unexpected %q during upload", f.T)))
			return
		}
	}
}

// serveDownload sends a header (ok: size), data frames, then end with the
// size and SHA-256 of what was sent.
func (c *conn) serveDownload(st *mux.Stream, m *transport.Msg) {
	if c.srv.cfg.Session.Sandbox {
		_ = c.write(st, errMsg(0, transport.KindLimit, "file transfer is disabled: the server runs with --sandbox"))
		return
	}
	f, err := os.Open(m.Path)
	if err != nil {
		c.fileErr(st, "download", m.Path, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		if err == nil {
			err = errors.New("is a directory")
		}
		c.fileErr(st, "download", m.Path, err)
		return
	}
	if err := c.write(st, &transport.Msg{T: transport.TOK, Size: fi.Size()}); err != nil {
		return
	}
	h := sha256.New()
	buf := make([]byte, transport.DataChunk)
	var n int64
	for {
		k, rerr := io.ReadFull(f, buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			if err := c.write(st, &transport.Msg{T: transport.TData, Data: buf[:k]}); err != nil {
				return
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			c.fileErr(st, "download", m.Path, rerr)
			return
		}
	}
	_ = c.write(st, &transport.Msg{T: transport.TEnd, Size: n, SHA256: h.Sum(nil)})
}
