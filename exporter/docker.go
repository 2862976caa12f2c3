package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
)

// DockerManifestFile is the file `docker load` reads first.
const DockerManifestFile = "manifest.json"

// DockerManifestEntry is one image of a docker archive's manifest.json.
// Paths are relative to the archive root.
type DockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// DockerArchive writes an image in the format of `docker save`, as docker 25
// does: manifest.json (config, familiar tags, layers) next to oci-layout,
// index.json and blobs/, so the same tar is also an OCI archive. Layers stay
// as the store holds them (gzip); `docker load` accepts compressed layers. An
// index is resolved to the runtime's platform first. Path "-" streams to
// stdout; W, if set, is used instead of Path.
type DockerArchive struct {
	Path string
	W    io.Writer
}

// Export writes the archive.
func (e DockerArchive) Export(ctx context.Context, src Source) (Report, error) {
	imgs := []images.Image{{Target: src.Manifest}}
	if len(src.Names) > 0 {
		imgs = imgs[:0]
		for _, n := range src.Names {
			imgs = append(imgs, images.Image{Name: n, Target: src.Manifest})
		}
	}
	es, err := dockerEntries(ctx, src.Content, imgs)
	if err != nil {
		return Report{}, fmt.Errorf("export docker archive: %w", err)
	}
	where, n, err := output(e.Path, e.W, func(w io.Writer) error {
		return writeTar(ctx, src.Content, w, es)
	})
	if err != nil {
		return Report{}, fmt.Errorf("export docker archive: %w", err)
	}
	return Report{Digest: src.Manifest.Digest, Path: where, Size: n}, nil
}

// Save writes imgs as one docker archive; images sharing a target share one
// manifest.json entry with all their tags. Unnamed images are included
// without tags.
func Save(ctx context.Context, cs *content.Store, imgs []images.Image, w io.Writer) error {
	if len(imgs) == 0 {
		return fmt.Errorf("save: no images")
	}
	es, err := dockerEntries(ctx, cs, imgs)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := writeTar(ctx, cs, w, es); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// dockerEntries lays out imgs as a docker archive, in the order given.
func dockerEntries(ctx context.Context, cs *content.Store, imgs []images.Image) ([]entry, error) {
	var (
		manifest []DockerManifestEntry
		index    []ocispec.Descriptor
		blobs    []ocispec.Descriptor
		byTarget = map[digest.Digest]int{}
	)
	for _, img := range imgs {
		r, err := images.Resolve(ctx, cs, img.Target, ocispec.Platform{})
		if err != nil {
			return nil, err
		}
		md := plain(r.ManifestDesc)
		md.Platform = nil
		i, ok := byTarget[md.Digest]
		if !ok {
			ds, err := closure(ctx, cs, md)
			if err != nil {
				return nil, err
			}
			blobs = append(blobs, ds...)
			var layers []string
			for _, l := range r.Manifest.Layers {
				layers = append(layers, blobPath(l.Digest))
			}
			i = len(manifest)
			byTarget[md.Digest] = i
			manifest = append(manifest, DockerManifestEntry{Config: blobPath(r.Manifest.Config.Digest), Layers: layers})
		}
		if img.Name == "" {
			if !ok {
				index = append(index, md)
			}
			continue
		}
		name, err := images.Normalize(img.Name)
		if err != nil {
			return nil, err
		}
		if images.Tag(name) != "" && !strings.Contains(name, "@") { // docker tags carry no digest
			manifest[i].RepoTags = append(manifest[i].RepoTags, images.Familiar(name))
		}
		md.Annotations = nameAnnotations(name)
		index = append(index, md)
	}
	mj, err := json.Marshal(manifest)
	if err != nil {
		return nil, fmt.Errorf("encode manifest.json: %w", err)
	}
	es, err := layoutEntries(uniqueBlobs(blobs), newIndex(index))
	if err != nil {
		return nil, err
	}
	return append(es, entry{name: DockerManifestFile, data: mj}), nil
}
