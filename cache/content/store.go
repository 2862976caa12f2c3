// Package content is strata's content-addressed blob store, laid out like an
// OCI image layout so that exporting a layout is a copy of files.
//
// Vocabulary:
//   - A blob is an immutable byte string named by its digest. Committed blobs
//     live at <root>/blobs/sha256/<hex> and are never modified in place.
//   - An ingest is a blob being written: a file <root>/ingest/<random> that a
//     Writer hashes while it streams. A live Writer holds an exclusive flock
//     on its ingest file.
//   - Commit checks the ingest against an expected digest and size, fsyncs it
//     and renames it into blobs/, then fsyncs the directory. A blob that does
//     not match never appears under blobs/; committing a blob that already
//     exists discards the ingest and succeeds.
//   - Sweep removes ingests of dead writers (files it can lock), the debris a
//     killed process leaves.
//
// One use: w, _ := s.Writer(ctx); io.Copy(w, r); w.Commit(size, dgst);
// w.Close(). WriteBlob and Put wrap that sequence; Open and ReadBlob read a
// committed blob. Several processes may share one root: every step is a
// rename or an flock, never a shared in-memory structure.
package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/lockfile"
)

// Info describes a committed blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Store is a content store rooted at one directory.
type Store struct {
	root string
}

// Open returns the store at root, creating its directories on first use.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", root, err)
		}
	}
	return &Store{root: root}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob d lives (or would live) on disk. It fails for a
// malformed digest or an algorithm other than sha256.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := validate(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

func validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("unsupported digest algorithm %s in %s", d.Algorithm(), d)
	}
	return nil
}

// Info returns the size of the committed blob d.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat content %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size()}, nil
}

// Open opens the committed blob d for reading. An *os.File is also an
// io.ReaderAt.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open content %s: %w", d, err)
	}
	return f, nil
}

// ReadBlob reads the whole blob d and checks it against its digest. It is
// meant for small blobs: manifests, indexes and configs.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	f, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("read content %s: stored bytes have digest %s", d, got)
	}
	return b, nil
}

// WriteBlob stores what r yields as the blob d, verifying its digest and, if
// size is not -1, its size. It does nothing (and does not read r) if the blob
// is already committed.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, size int64, d digest.Digest) error {
	if err := validate(d); err != nil {
		return err
	}
	if info, err := s.Info(ctx, d); err == nil && (size < 0 || info.Size == size) {
		return nil
	}
	w, err := s.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("write content %s: %w", d, err)
	}
	return w.Commit(size, d)
}

// Put stores b as a blob and returns its descriptor with mediaType.
func (s *Store) Put(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	if err := s.WriteBlob(ctx, bytes.NewReader(b), int64(len(b)), d); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
}

// Delete removes the committed blob d.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.BlobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete content %s: %w", d, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete content %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in digest order. Files under blobs/
// that are not named by a valid digest are skipped.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("walk content %s: %w", dir, err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !e.Type().IsRegular() || d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		} else if err != nil {
			return fmt.Errorf("walk content %s: %w", d, err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// Sweep removes ingest files not modified for olderThan whose writer is gone,
// that is, files it can flock. Ingests of live writers are left alone.
func (s *Store) Sweep(olderThan time.Duration) error {
	dir := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sweep ingest %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if err := sweepOne(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepOne removes path if no writer holds its lock. LockIfDead makes sure
// the file locked is still the one at path: an ingest committed (renamed
// away) meanwhile is left alone.
func sweepOne(path string) error {
	f, dead, err := lockfile.LockIfDead(path)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", path, err)
	}
	if !dead || f == nil {
		return nil // a live writer, or gone already
	}
	defer f.Close()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sweep %s: %w", path, err)
	}
	return nil
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
