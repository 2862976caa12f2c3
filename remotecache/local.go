package remotecache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/internal/atomicfile"
)

// DefaultTag names the cache in an OCI layout when the user gives none.
const DefaultTag = "latest"

// manifestOf is the artifact manifest of a config whose blob is cfgDesc.
func manifestOf(cfg Config, cfgDesc ocispec.Descriptor) ocispec.Manifest {
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       cfgDesc,
		Layers:       make([]ocispec.Descriptor, 0, len(cfg.Layers)),
	}
	m.Layers = append(m.Layers, blobs(cfg.Layers)...)
	return m
}

// Store puts the config and the artifact manifest into cs and returns the
// manifest's and the config's descriptors. The layers must be in cs
// already, unless the caller knows where they are.
func Store(ctx context.Context, cs *content.Store, cfg Config) (manifest, config ocispec.Descriptor, err error) {
	cb, err := cfg.Marshal()
	if err != nil {
		return manifest, config, err
	}
	if config, err = cs.Put(ctx, MediaTypeConfig, cb); err != nil {
		return manifest, config, err
	}
	mb, err := json.Marshal(manifestOf(cfg, config))
	if err != nil {
		return manifest, config, err
	}
	if manifest, err = cs.Put(ctx, ocispec.MediaTypeImageManifest, mb); err != nil {
		return manifest, config, err
	}
	manifest.ArtifactType = ArtifactType
	return manifest, config, nil
}

// ExportLocal writes the cache into the OCI layout at dir under tag: blobs
// the layout lacks, then the manifest, then index.json (replacing the
// entry of the same tag), each file atomically. Layers come from cs, or,
// for layers missing in both the layout and cs (records carried over from
// an import, results never unpacked), from where lazy says they are
// (exporting back to the layout imported from copies nothing).
func ExportLocal(ctx context.Context, cs *content.Store, dir, tag string, cfg Config, lazy *Blobs) error {
	desc, cdesc, err := Store(ctx, cs, cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	for _, b := range append([]ocispec.Descriptor{desc, cdesc}, blobs(cfg.Layers)...) {
		if err := copyToLayout(ctx, cs, lazy, dir, b); err != nil {
			return fmt.Errorf("cache export to %s: %w", dir, err)
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile)); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("cache export: %s/index.json: %w", dir, err)
		}
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != tag {
			kept = append(kept, m)
		}
	}
	entry := desc
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	idx.Manifests = append(kept, entry)
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), b, 0o644)
}

// copyToLayout puts blob b into the layout at dir unless it is there.
func copyToLayout(ctx context.Context, cs *content.Store, lazy *Blobs, dir string, b ocispec.Descriptor) error {
	if err := b.Digest.Validate(); err != nil {
		return err
	}
	dst := filepath.Join(dir, "blobs", b.Digest.Algorithm().String(), b.Digest.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if lazy != nil { // Fetch skips a blob cs has
		if err := lazy.Fetch(ctx, cs, []ocispec.Descriptor{b}, nil); err != nil {
			return err
		}
	}
	src, err := cs.Open(ctx, b.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer src.Close()
	f, err := atomicfile.New(dst, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, src); err != nil {
		return err
	}
	return f.Commit()
}

// localSource reads blobs from an OCI layout.
type localSource struct{ dir string }

func (l localSource) String() string { return l.dir }

// Fetch copies blobs from the layout into cs, verifying each digest.
func (l localSource) Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error {
	if each == nil {
		each = func(ocispec.Descriptor) {}
	}
	for _, b := range blobs {
		if _, err := cs.Info(ctx, b.Digest); err == nil {
			each(b)
			continue
		}
		if err := b.Digest.Validate(); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(l.dir, "blobs", b.Digest.Algorithm().String(), b.Digest.Encoded()))
		if err != nil {
			return fmt.Errorf("cache %s: blob %s: %w", l.dir, b.Digest, err)
		}
		err = cs.WriteBlob(ctx, f, b.Size, b.Digest)
		f.Close()
		if err != nil {
			return fmt.Errorf("cache %s: blob %s: %w", l.dir, b.Digest, err)
		}
		each(b)
	}
	return nil
}

// maxConfigSize bounds a cache config read from anywhere.
const maxConfigSize = 64 << 20

// ImportLocal reads the cache tagged tag in the OCI layout at dir. Only
// index.json, the manifest and the config are read; layers are read when a
// record is hit.
func ImportLocal(ctx context.Context, dir, tag string) (Config, BlobSource, error) {
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return Config{}, nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return Config{}, nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	var desc *ocispec.Descriptor
	for i, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == tag {
			desc = &idx.Manifests[i]
		}
	}
	if desc == nil {
		return Config{}, nil, fmt.Errorf("%s has no cache tagged %q", dir, tag)
	}
	src := localSource{dir: dir}
	mb, err := readLayoutBlob(dir, *desc, 4<<20)
	if err != nil {
		return Config{}, nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return Config{}, nil, fmt.Errorf("cache manifest %s: %w", desc.Digest, err)
	}
	if m.Config.MediaType != MediaTypeConfig {
		return Config{}, nil, fmt.Errorf("%s:%s is not a strata cache (config type %q)", dir, tag, m.Config.MediaType)
	}
	cb, err := readLayoutBlob(dir, m.Config, maxConfigSize)
	if err != nil {
		return Config{}, nil, err
	}
	cfg, err := Decode(cb)
	return cfg, src, err
}

// readLayoutBlob reads a small blob of the layout whole, verified.
func readLayoutBlob(dir string, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	if d.Size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, over the limit of %d", d.Digest, d.Size, limit)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("blob %s of %s does not match its digest", d.Digest, dir)
	}
	return b, nil
}
