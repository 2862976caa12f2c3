package remotecache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/registry"
)

// registrySource fetches blobs from one repository: a cache's, or a base
// image's.
type registrySource struct {
	ref  string
	opts registry.Options
}

// RegistrySource is the BlobSource of the repository of ref (a normalized
// name), reached with opts.
func RegistrySource(ref string, opts registry.Options) BlobSource {
	return registrySource{ref: ref, opts: opts}
}

func (r registrySource) String() string { return images.Familiar(r.ref) }

func (r registrySource) Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error {
	return registry.New(cs, nil, r.opts).FetchBlobsEach(ctx, r.ref, blobs, each)
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
	var cfg Config
	if m.Config.MediaType == MediaTypeConfig {
		cfg, err = Decode(cb)
	} else if cfg, err = inlineOf(cb); err != nil {
		err = fmt.Errorf("%s: %w", images.Familiar(ref), err)
	}
	if err != nil {
		return Config{}, nil, err
	}
	// A push to this registry mounts the cache's layers from here, even
	// those the store never downloads.
	if opts.Sources != nil {
		for _, l := range cfg.Layers {
			if !l.Empty {
				opts.Sources.Add(l.Blob.Digest, repository(ref))
			}
		}
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

// ExportRegistry pushes the cache to ref. Layers that lazy knows from an
// import of the same repository are there: they are neither checked nor
// uploaded. Other layers missing from cs are fetched from where lazy says
// they are, unless the registry has them or mounts them. When ref already
// names this exact cache, nothing is written.
func ExportRegistry(ctx context.Context, cs *content.Store, opts registry.Options, ref string, cfg Config, lazy *Blobs) error {
	desc, _, err := Store(ctx, cs, cfg)
	if err != nil {
		return err
	}
	po := registry.PushOptions{SkipUnchanged: true}
	if lazy != nil {
		for _, b := range blobs(cfg.Layers) {
			if s, ok := lazy.Source(b.Digest); ok {
				if rs, ok := s.(registrySource); ok && sameRepository(rs.ref, ref) {
					po.Present = append(po.Present, b.Digest)
				}
			}
		}
		po.Fetch = lazy.FetchOne(cs)
	}
	_, err = registry.NewPusher(cs, opts).PushWith(ctx, desc, []string{ref}, po)
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
