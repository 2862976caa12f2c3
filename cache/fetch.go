package cache

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
)

// BlobFetcher stores blobs that the content store lacks from wherever they
// are known to live: the registry of a base image resolved but not pulled,
// the registry or OCI layout of an imported cache.
type BlobFetcher interface {
	// Fetch stores blobs into cs, each verified against its digest and
	// size, and calls each (when set) as each blob is there, those cs had
	// first; each may be called more than once for a blob. A blob of no
	// known source is an error.
	Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error
}
