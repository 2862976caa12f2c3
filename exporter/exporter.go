// Package exporter sends an image that is already in the content store to
// its outputs, and loads archives back into the store.
//
// Vocabulary:
//   - A Source is an image as the builder leaves it: a manifest (or index)
//     descriptor whose config and layers are blobs of a content store, and
//     the normalized names to give it.
//   - An Exporter is one output target, a typed value: ImageStore tags the
//     names, OCILayout writes a directory, OCIArchive a tar of that directory,
//     DockerArchive the tar `docker load` reads. Each returns a Report.
//   - The closure of an image is every blob its descriptor reaches: index ->
//     manifests -> config and layers. Archives carry exactly the closure.
//     Manifests an index names but the store lacks (other platforms of a
//     pulled image) are left out; a manifest's own config or layers missing
//     is an error.
//
// Archives are deterministic: entries sorted by path, parents first, mode
// 0644 (0755 for directories), uid/gid 0, no owner names, modification time
// the Unix epoch, so one image always gives the same archive bytes. Load is
// the reverse for both formats: it verifies every blob against its digest
// as it streams into the store, then tags what the archive names.
package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry"
)

// Annotations of index.json entries, as BuildKit, containerd and docker write
// them: the full name, and the tag alone.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = ocispec.AnnotationRefName
)

// Source is an image in a content store and the names to give it.
type Source struct {
	Content *content.Store
	// Images is the store's image names: the ImageStore exporter tags there.
	Images *images.Store
	// Registry is how the Registry exporter reaches registries.
	Registry registry.Options
	Manifest ocispec.Descriptor
	// Names are normalized names (see images.Normalize); may be empty.
	Names []string
	// Fetch, if set, stores a layer blob the content store lacks: the
	// Registry exporter asks for one only when the registry neither has
	// nor mounts it. Other exporters need every blob in the content store.
	Fetch func(ctx context.Context, b ocispec.Descriptor) error
}

// Report says what an export produced.
type Report struct {
	// Digest is the exported manifest (or index) digest.
	Digest digest.Digest
	// Path is where the output went: a directory or file, "-" for a stream,
	// "" for the image store.
	Path string
	// Size is the number of bytes written; 0 for the image store.
	Size int64
	// Pushed are the names pushed to registries, pinned to the digest
	// ("host/repo:tag@sha256:...").
	Pushed []string
}

// Exporter sends an image to one output.
type Exporter interface {
	Export(ctx context.Context, src Source) (Report, error)
}

// ImageStore tags the image in the source's image store with Names (as
// `-o type=image,name=...` gives them), or else with the source's names;
// with Push it also sends the image to the registry of each name.
type ImageStore struct {
	Names []string // normalized; nil means the source's
	Push  bool
	// Insecure lets the push reach the names' registries over plain HTTP
	// or unverified TLS (registry.insecure=true).
	Insecure bool
}

// Export tags src.Manifest with each name, then pushes if asked.
func (e ImageStore) Export(ctx context.Context, src Source) (Report, error) {
	if _, err := closure(ctx, src.Content, src.Manifest); err != nil {
		return Report{}, fmt.Errorf("export to image store: %w", err)
	}
	names := e.Names
	if names == nil {
		names = src.Names
	}
	for _, n := range names {
		if err := src.Images.Put(ctx, images.Image{Name: n, Target: plain(src.Manifest)}); err != nil {
			return Report{}, fmt.Errorf("export to image store: %w", err)
		}
	}
	if !e.Push {
		return Report{Digest: src.Manifest.Digest}, nil
	}
	return Registry{Names: names, Insecure: e.Insecure}.Export(ctx, src)
}

// Registry pushes the image to the registry of each of Names (or else the
// source's names), without tagging it in the store: `-o type=registry` and
// `--push`.
type Registry struct {
	Names    []string // normalized; nil means the source's
	Insecure bool
}

// Export pushes src.Manifest under every name.
func (e Registry) Export(ctx context.Context, src Source) (Report, error) {
	names := e.Names
	if names == nil {
		names = src.Names
	}
	if len(names) == 0 {
		return Report{}, errors.New("push: no name to push to (give -t or name=)")
	}
	opts := src.Registry
	if e.Insecure {
		opts = opts.WithInsecure(names...)
	}
	res, err := registry.NewPusher(src.Content, opts).PushWith(ctx, plain(src.Manifest), names, registry.PushOptions{Fetch: src.Fetch})
	if err != nil {
		return Report{}, err
	}
	return Report{Digest: res.Target.Digest, Pushed: res.Refs}, nil
}

// plain is d without annotations: names belong to the store or index.json.
func plain(d ocispec.Descriptor) ocispec.Descriptor {
	d.Annotations = nil
	return d
}

// nameAnnotations are the index.json annotations for a normalized name.
func nameAnnotations(name string) map[string]string {
	a := map[string]string{AnnotationImageName: name}
	if tag := images.Tag(name); tag != "" {
		a[AnnotationRefName] = tag
	}
	return a
}

// nameFromAnnotations is the normalized name an index.json entry gives, or
// "" if it gives none. A ref.name that is only a tag names no repository and
// is ignored.
func nameFromAnnotations(a map[string]string) (string, error) {
	n := a[AnnotationImageName]
	if n == "" {
		if r := a[AnnotationRefName]; strings.ContainsAny(r, "/:@") {
			n = r
		}
	}
	if n == "" {
		return "", nil
	}
	return images.Normalize(n)
}

// maxClosureDepth bounds index nesting.
const maxClosureDepth = 4

// closure lists every blob desc reaches, desc first, each once.
func closure(ctx context.Context, cs *content.Store, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	var visit func(d ocispec.Descriptor, depth int, optional bool) error
	visit = func(d ocispec.Descriptor, depth int, optional bool) error {
		if seen[d.Digest] {
			return nil
		}
		if depth > maxClosureDepth {
			return fmt.Errorf("image %s: indexes nested deeper than %d", desc.Digest, maxClosureDepth)
		}
		info, err := cs.Info(ctx, d.Digest)
		if err != nil {
			if optional && errors.Is(err, errdefs.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		if d.Size != info.Size {
			return fmt.Errorf("image %s: blob %s has size %d, descriptor says %d", desc.Digest, d.Digest, info.Size, d.Size)
		}
		seen[d.Digest] = true
		out = append(out, d)
		switch {
		case images.IsIndex(d.MediaType):
			var idx ocispec.Index
			if err := readJSON(ctx, cs, d.Digest, &idx); err != nil {
				return err
			}
			for _, m := range idx.Manifests {
				if err := visit(m, depth+1, true); err != nil {
					return err
				}
			}
		case images.IsManifest(d.MediaType):
			var m ocispec.Manifest
			if err := readJSON(ctx, cs, d.Digest, &m); err != nil {
				return err
			}
			for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if err := visit(l, depth+1, isForeign(l.MediaType)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if !images.IsIndex(desc.MediaType) && !images.IsManifest(desc.MediaType) {
		return nil, fmt.Errorf("image %s: media type %q is neither a manifest nor an index", desc.Digest, desc.MediaType)
	}
	if err := visit(desc, 0, false); err != nil {
		return nil, err
	}
	return out, nil
}

// isForeign reports whether a layer may be absent by design.
func isForeign(mediaType string) bool {
	return strings.Contains(mediaType, "foreign") || strings.Contains(mediaType, "nondistributable")
}

func readJSON(ctx context.Context, cs *content.Store, d digest.Digest, v any) error {
	b, err := cs.ReadBlob(ctx, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", d, err)
	}
	return nil
}

// blobPath is a blob's path inside a layout or archive.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}
