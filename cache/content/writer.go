package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/lockfile"
)

// Writer streams one blob into an ingest file, hashing as it goes. It is not
// safe for concurrent use. Close it always: after Commit it only releases the
// lock, otherwise it discards the ingest.
type Writer struct {
	s         *Store
	f         *os.File
	path      string
	digester  digest.Digester
	size      int64
	committed bool
	closed    bool
}

// Writer starts a new ingest. Its file appears already locked
// (lockfile.Create), so Sweep never takes a live writer's ingest.
func (s *Store) Writer(ctx context.Context) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	f, err := lockfile.Create(filepath.Join(s.root, "ingest", "ingest-"+hex.EncodeToString(b[:])))
	if err != nil {
		return nil, fmt.Errorf("create ingest: %w", err)
	}
	return &Writer{s: s, f: f, path: f.Name(), digester: digest.SHA256.Digester()}, nil
}

// Write appends p to the ingest and to the running digest.
func (w *Writer) Write(p []byte) (int, error) {
	if w.committed || w.closed {
		return 0, fmt.Errorf("write ingest %s: writer already committed or closed", w.path)
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write ingest %s: %w", w.path, err)
	}
	return n, nil
}

// Digest is the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return w.digester.Digest() }

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Commit makes the ingest the blob expected, if what was written has that
// digest and, unless size is -1, that size. On a mismatch the ingest stays
// (Close discards it) and nothing appears under blobs/.
func (w *Writer) Commit(size int64, expected digest.Digest) error {
	if w.committed || w.closed {
		return fmt.Errorf("commit %s: writer already committed or closed", expected)
	}
	if err := validate(expected); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if size >= 0 && size != w.size {
		return fmt.Errorf("commit %s: size mismatch: wrote %d bytes, expected %d", expected, w.size, size)
	}
	if got := w.Digest(); got != expected {
		return fmt.Errorf("commit %s: digest mismatch: wrote %s", expected, got)
	}
	target, _ := w.s.BlobPath(expected)
	if fi, err := os.Stat(target); err == nil && fi.Size() == w.size {
		w.committed = true // already there: idempotent
		return w.discard()
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit %s: sync ingest: %w", expected, err)
	}
	if err := os.Chmod(w.path, 0o444); err != nil {
		return fmt.Errorf("commit %s: %w", expected, err)
	}
	if err := os.Rename(w.path, target); err != nil {
		return fmt.Errorf("commit %s: %w", expected, err)
	}
	w.committed = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("commit %s: %w", expected, err)
	}
	return w.release()
}

// Close discards the ingest unless it was committed, and releases its lock.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if w.committed {
		return w.release()
	}
	return w.discard()
}

func (w *Writer) discard() error {
	err := os.Remove(w.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, w.release())
}

func (w *Writer) release() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.f.Close() // closing drops the flock
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
