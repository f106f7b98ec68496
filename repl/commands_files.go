package repl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// progressMin is the size from which a transfer shows a progress bar.
const progressMin = 1 << 20

func cmdUpload(s *shell, args []string) {
	if len(args) < 1 || len(args) > 2 {
		s.usage("upload")
		return
	}
	local := args[0]
	remote := filepath.Base(local)
	if len(args) == 2 {
		remote = args[1]
		if strings.HasSuffix(remote, "/") {
			remote += filepath.Base(local)
		}
	}
	f, err := os.Open(local)
	if err != nil {
		s.fail("upload: %s", localErr(err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.fail("upload: %s", localErr(err))
		return
	}
	if st.IsDir() {
		s.fail("upload: %s is a directory", local)
		return
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	sum := sha256.New()
	bar := s.progress("upload "+filepath.Base(local), st.Size())
	ctx, done := s.request(24 * time.Hour)
	err = c.Upload(ctx, io.TeeReader(f, sum), st.Size(), remote, func(n int64) { bar.update(n, st.Size()) })
	done()
	bar.finish()
	if err != nil {
		s.requestFailed(h, c, "upload", err)
		return
	}
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("uploaded %s to %s:%s (%s, sha256 %s…)\n", local, h.name, Escape(remote),
			byteSize(st.Size()), hex.EncodeToString(sum.Sum(nil))[:12]))
	}
}

func cmdDownload(s *shell, args []string) {
	if len(args) < 1 || len(args) > 2 {
		s.usage("download")
		return
	}
	remote := args[0]
	local := path.Base(strings.ReplaceAll(remote, "\\", "/"))
	if len(args) == 2 {
		local = args[1]
		if st, err := os.Stat(local); err == nil && st.IsDir() {
			local = filepath.Join(local, path.Base(remote))
		}
	}
	h, c, ok := s.current()
	if !ok {
		return
	}
	dir := filepath.Dir(local)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(local)+".part*")
	if err != nil {
		s.fail("download: %s", localErr(err))
		return
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	sum := sha256.New()
	bar := s.progress("download "+path.Base(remote), -1)
	ctx, done := s.request(24 * time.Hour)
	n, err := c.Download(ctx, remote, io.MultiWriter(tmp, sum), bar.update)
	done()
	bar.finish()
	if cerr := tmp.Close(); err == nil && cerr != nil {
		s.fail("download: %s", localErr(cerr))
		return
	}
	if err != nil {
		s.requestFailed(h, c, "download", err)
		return
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		s.fail("download: %s", localErr(err))
		return
	}
	if s.cfg.Interactive {
		s.print(fmt.Sprintf("downloaded %s:%s to %s (%s, sha256 %s…)\n", h.name, Escape(remote), local,
			byteSize(n), hex.EncodeToString(sum.Sum(nil))[:12]))
	}
}

// writeFileAtomic writes data to a temporary file beside name and renames
// it into place, so a failure never leaves half a file.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".part*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// progressBar draws a one-line bar on the error stream for large transfers
// when a person is watching. Nothing runs Readline meanwhile, so the
// carriage returns cannot garble a prompt.
type progressBar struct {
	s     *shell
	label string
	on    bool
	drawn bool
	last  time.Time
	start time.Time
}

func (s *shell) progress(label string, size int64) *progressBar {
	return &progressBar{s: s, label: label, on: s.cfg.Interactive && (size < 0 || size > progressMin), start: time.Now()}
}

func (p *progressBar) update(done, total int64) {
	if !p.on || (total >= 0 && total <= progressMin) {
		return
	}
	if now := time.Now(); now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	} else {
		p.last = now
	}
	const width = 30
	line := fmt.Sprintf("\r%s %s", p.label, byteSize(done))
	if total > 0 {
		fill := int(float64(width) * float64(done) / float64(total))
		fill = min(max(fill, 0), width)
		line = fmt.Sprintf("\r%s [%s%s] %3d%% %s / %s", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
			done*100/total, byteSize(done), byteSize(total))
	}
	if secs := time.Since(p.start).Seconds(); secs > 0.2 {
		line += fmt.Sprintf("  %s/s", byteSize(int64(float64(done)/secs)))
	}
	p.drawn = true
	p.s.printErr(line + "\x1b[K")
}

func (p *progressBar) finish() {
	if p.drawn {
		p.s.printErr("\r\x1b[K")
	}
}
