package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/internal/compression"
)

// ImportOptions is a filesystem tarball to turn into an image.
type ImportOptions struct {
	Name    string
	Changes ocispec.ImageConfig // config of the new image (CMD, ENV, ...)
	// Created is the image's creation time; zero means now.
	Created time.Time
}

// Import makes a one-layer image from a root filesystem tar (plain or
// compressed), stores it and tags it, like `docker import`.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (images.Image, error) {
	name, err := images.Normalize(opts.Name)
	if err != nil {
		return images.Image{}, err
	}
	src, _, err := compression.Decompress(r)
	if err != nil {
		return images.Image{}, fmt.Errorf("import: %w", err)
	}
	defer src.Close()
	cw, err := s.content.Writer(ctx)
	if err != nil {
		return images.Image{}, err
	}
	defer cw.Close()
	diffID, blob, err := layer.Compress(src, cw)
	if err != nil {
		return images.Image{}, fmt.Errorf("import: %w", err)
	}
	if err := cw.Commit(blob.Size, blob.Digest); err != nil {
		return images.Image{}, err
	}
	created := opts.Created.UTC()
	if opts.Created.IsZero() {
		created = time.Now().UTC()
	}
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   opts.Changes,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:  []ocispec.History{{Created: &created, CreatedBy: "strata import", Comment: "Imported from tarball"}},
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return images.Image{}, err
	}
	cdesc, err := s.content.Put(ctx, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return images.Image{}, err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{blob}}
	mb, err := json.Marshal(m)
	if err != nil {
		return images.Image{}, err
	}
	mdesc, err := s.content.Put(ctx, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return images.Image{}, err
	}
	img := images.Image{Name: name, Target: mdesc, Created: created, Updated: time.Now().UTC()}
	return img, s.images.Put(ctx, img)
}
