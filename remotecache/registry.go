package remotecache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/registry"
)

// registrySource fetches layers from the cache's repository.
type registrySource struct {
	ref  string
	opts registry.Options
}

func (r registrySource) String() string { return images.Familiar(r.ref) }

func (r registrySource) Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor) error {
	return registry.New(cs, nil, r.opts).FetchBlobs(ctx, r.ref, blobs)
}

// ImportRegistry reads the cache at ref: a strata cache artifact, or an
// image with an inline cache in its config. Two requests (manifest, config)
// after authentication; layers are fetched when a record is hit.
func ImportRegistry(ctx context.Context, opts registry.Options, ref string) (Config, BlobSource, error) {
	p := registry.New(nil, nil, opts)
	desc, mb, err := p.FetchManifest(ctx, ref)
	if err != nil {
		return Config{}, nil, err
	}
	src := registrySource{ref: ref, opts: opts}
	if images.IsIndex(desc.MediaType) {
		return Config{}, nil, fmt.Errorf("%s is an index: a cache is one manifest", images.Familiar(ref))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return Config{}, nil, fmt.Errorf("manifest of %s: %w", images.Familiar(ref), err)
	}
	cb, err := p.FetchBlob(ctx, ref, m.Config, maxConfigSize)
	if err != nil {
		return Config{}, nil, err
	}
	if m.Config.MediaType == MediaTypeConfig {
		cfg, err := Decode(cb)
		return cfg, src, err
	}
	cfg, err := inlineOf(cb)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", images.Familiar(ref), err)
	}
	return cfg, src, nil
}

// inlineOf reads the inline cache of an image config.
func inlineOf(imageConfig []byte) (Config, error) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(imageConfig, &c); err != nil {
		return Config{}, err
	}
	raw, ok := c[InlineKey]
	if !ok {
		return Config{}, fmt.Errorf("neither a strata cache nor an image with an inline cache")
	}
	return Decode(raw)
}

// ExportRegistry pushes the cache to ref. The layers of records carried
// over from an import of the same repository are known to be there: they
// are neither checked nor uploaded. When ref already names this exact
// cache, nothing is written.
func ExportRegistry(ctx context.Context, cs *content.Store, opts registry.Options, ref string, cfg Config, carried []Imported) error {
	desc, _, err := Store(ctx, cs, cfg)
	if err != nil {
		return err
	}
	var present []digest.Digest
	for _, im := range carried {
		if rs, ok := im.Source.(registrySource); ok && sameRepository(rs.ref, ref) {
			for _, l := range im.Layers {
				present = append(present, l.Blob.Digest)
			}
		}
	}
	_, err = registry.NewPusher(cs, opts).PushWith(ctx, desc, []string{ref}, registry.PushOptions{Present: present, SkipUnchanged: true})
	return err
}

// sameRepository reports whether two normalized names name one repository.
func sameRepository(a, b string) bool {
	return repository(a) == repository(b)
}

func repository(n string) string {
	if i := strings.IndexByte(n, '@'); i >= 0 {
		n = n[:i]
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		n = n[:i]
	}
	return n
}
