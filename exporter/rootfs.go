package exporter

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/mount"
)

// LocalDir writes the image's filesystem (its layers applied in order,
// whiteouts removing what they hide) into Dir, creating it if needed: the
// `-o type=local,dest=DIR` of `docker buildx build`, for taking build
// artifacts out of an image. Owners and modes are kept.
type LocalDir struct {
	Dir string
}

// Export implements Exporter.
func (e LocalDir) Export(ctx context.Context, src Source) (Report, error) {
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return Report{}, fmt.Errorf("export to %s: %w", e.Dir, err)
	}
	if err := unpackImage(ctx, src, e.Dir); err != nil {
		return Report{}, fmt.Errorf("export to %s: %w", e.Dir, err)
	}
	return Report{Digest: src.Manifest.Digest, Path: e.Dir}, nil
}

// RootfsTar writes the image's filesystem as one tar (`-o type=tar` of
// buildx, `strata export`): entries sorted, headers normalized, so the same
// image gives the same bytes. Path "-" or W streams it.
type RootfsTar struct {
	Path string
	W    io.Writer
}

// Export implements Exporter.
func (e RootfsTar) Export(ctx context.Context, src Source) (Report, error) {
	tmp, err := os.MkdirTemp(tempBase(e.Path), ".strata-rootfs-")
	if err != nil {
		return Report{}, fmt.Errorf("export rootfs tar: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unpackImage(ctx, src, tmp); err != nil {
		return Report{}, fmt.Errorf("export rootfs tar: %w", err)
	}
	where, n, err := output(e.Path, e.W, func(w io.Writer) error {
		_, err := layer.WriteDiff(ctx, w, nil, []mount.Mount{{Type: "bind", Source: tmp}}, layer.DiffOptions{})
		return err
	})
	if err != nil {
		return Report{}, fmt.Errorf("export rootfs tar: %w", err)
	}
	return Report{Digest: src.Manifest.Digest, Path: where, Size: n}, nil
}

// tempBase puts the unpacked tree next to the output file (same file
// system, and a user-chosen place), or in the system temp dir for a stream.
func tempBase(path string) string {
	if path == "" || path == "-" {
		return os.TempDir()
	}
	return filepath.Dir(path)
}

// unpackImage applies the layers of the image src names onto dir.
func unpackImage(ctx context.Context, src Source, dir string) error {
	res, err := images.Resolve(ctx, src.Content, src.Manifest, images.DefaultPlatform(ocispec.Platform{}))
	if err != nil {
		return err
	}
	root := []mount.Mount{{Type: "bind", Source: dir}}
	for i, l := range res.Manifest.Layers {
		if err := applyBlob(ctx, src.Content, root, l.Digest); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return nil
}

func applyBlob(ctx context.Context, cs *content.Store, root []mount.Mount, d digest.Digest) error {
	f, err := cs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = layer.Apply(ctx, root, f)
	return err
}
