package remotecache

import (
	"context"
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
)

// Blobs knows where the blobs a build has not downloaded live: the layers
// of imported caches and of base images resolved but not pulled. It is a
// cache.BlobFetcher over all of them, safe for concurrent use.
type Blobs struct {
	mu  sync.Mutex
	src map[digest.Digest]BlobSource
}

// NewBlobs returns an empty Blobs.
func NewBlobs() *Blobs { return &Blobs{src: map[digest.Digest]BlobSource{}} }

// Add records that src holds blobs; a blob already known keeps its first
// source.
func (b *Blobs) Add(src BlobSource, blobs ...ocispec.Descriptor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range blobs {
		if _, ok := b.src[d.Digest]; !ok {
			b.src[d.Digest] = src
		}
	}
}

// AddIndex records the layers of every record of ix.
func (b *Blobs) AddIndex(ix *Index) {
	for _, im := range ix.Entries() {
		for _, l := range im.Layers {
			if !l.Empty {
				b.Add(im.Source, l.Blob)
			}
		}
	}
}

// Source returns where d can be fetched from.
func (b *Blobs) Source(d digest.Digest) (BlobSource, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.src[d]
	return s, ok
}

// Fetch stores the blobs cs lacks from their sources, one request stream
// per source, the sources at once; each is called as each blob is there.
func (b *Blobs) Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error {
	var order []BlobSource
	bySource := map[BlobSource][]ocispec.Descriptor{}
	for _, d := range blobs {
		if _, err := cs.Info(ctx, d.Digest); err == nil {
			if each != nil {
				each(d)
			}
			continue
		}
		s, ok := b.Source(d.Digest)
		if !ok {
			return fmt.Errorf("blob %s is not in the store and no registry or cache is known to have it", d.Digest)
		}
		if _, seen := bySource[s]; !seen {
			order = append(order, s)
		}
		bySource[s] = append(bySource[s], d)
	}
	errs := make(chan error, len(order))
	for _, s := range order {
		go func() {
			err := s.Fetch(ctx, cs, bySource[s], each)
			if err != nil {
				err = fmt.Errorf("fetch from %s: %w", s, err)
			}
			errs <- err
		}()
	}
	var first error
	for range order {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// FetchOne is Fetch of one blob into cs, in the shape of
// registry.PushOptions.Fetch.
func (b *Blobs) FetchOne(cs *content.Store) func(context.Context, ocispec.Descriptor) error {
	return func(ctx context.Context, d ocispec.Descriptor) error {
		return b.Fetch(ctx, cs, []ocispec.Descriptor{d}, nil)
	}
}
