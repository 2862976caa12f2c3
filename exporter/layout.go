package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
)

// OCILayout writes an image into an OCI image layout directory: oci-layout,
// index.json and blobs/. An existing layout is extended: blobs already there
// are kept, and index.json entries with one of the new names (or, for an
// unnamed image, the same digest and no name) are replaced.
type OCILayout struct {
	Dir string
}

// Export writes the layout.
func (e OCILayout) Export(ctx context.Context, src Source) (Report, error) {
	blobs, err := closure(ctx, src.Content, src.Manifest)
	if err != nil {
		return Report{}, fmt.Errorf("export oci layout %s: %w", e.Dir, err)
	}
	if err := os.MkdirAll(filepath.Join(e.Dir, "blobs", "sha256"), 0o755); err != nil {
		return Report{}, fmt.Errorf("export oci layout: %w", err)
	}
	var total int64
	for _, b := range blobs {
		n, err := copyBlobFile(ctx, src.Content, b, filepath.Join(e.Dir, filepath.FromSlash(blobPath(b.Digest))))
		if err != nil {
			return Report{}, fmt.Errorf("export oci layout %s: %w", e.Dir, err)
		}
		total += n
	}
	idx, err := mergeIndex(filepath.Join(e.Dir, "index.json"), indexEntries(src.Manifest, src.Names))
	if err != nil {
		return Report{}, fmt.Errorf("export oci layout %s: %w", e.Dir, err)
	}
	es, err := layoutEntries(nil, idx)
	if err != nil {
		return Report{}, err
	}
	for _, f := range es {
		n, err := writeFileAtomic(filepath.Join(e.Dir, f.name), func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		})
		if err != nil {
			return Report{}, fmt.Errorf("export oci layout: %w", err)
		}
		total += n
	}
	return Report{Digest: src.Manifest.Digest, Path: e.Dir, Size: total}, nil
}

// copyBlobFile copies blob b to dst unless dst already has its size, and
// returns the bytes written.
func copyBlobFile(ctx context.Context, cs *content.Store, b ocispec.Descriptor, dst string) (int64, error) {
	if fi, err := os.Stat(dst); err == nil && fi.Size() == b.Size {
		return 0, nil
	}
	return writeFileAtomic(dst, func(w io.Writer) error {
		return copyBlob(ctx, cs, w, b)
	})
}

// mergeIndex reads the index at p (if any) and returns it with add replacing
// the entries they supersede.
func mergeIndex(p string, add []ocispec.Descriptor) (ocispec.Index, error) {
	var old ocispec.Index
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return ocispec.Index{}, fmt.Errorf("read %s: %w", p, err)
	default:
		if err := json.Unmarshal(b, &old); err != nil {
			return ocispec.Index{}, fmt.Errorf("decode %s: %w", p, err)
		}
	}
	var names []string
	for _, d := range add {
		if n := d.Annotations[AnnotationImageName]; n != "" {
			names = append(names, n)
		}
	}
	ms := slices.DeleteFunc(old.Manifests, func(d ocispec.Descriptor) bool {
		n := d.Annotations[AnnotationImageName]
		if n == "" {
			n = d.Annotations[AnnotationRefName]
		}
		if len(names) == 0 {
			return n == "" && d.Digest == add[0].Digest
		}
		return slices.Contains(names, n)
	})
	return newIndex(append(ms, add...)), nil
}
