package builder

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/frontend/dockerfile"
)

// resolver finds base images in the local image store.
type resolver struct{ s *Store }

func (r *resolver) ResolveImage(ctx context.Context, ref string, platform ocispec.Platform) (dockerfile.ResolvedImage, error) {
	name, err := images.Normalize(ref)
	if err != nil {
		return dockerfile.ResolvedImage{}, err
	}
	img, err := r.s.Images.Get(ctx, name)
	if errors.Is(err, images.ErrNotFound) {
		return dockerfile.ResolvedImage{}, fmt.Errorf("image %s not found in the local store (add it with strata load or strata import)", images.Familiar(name))
	}
	if err != nil {
		return dockerfile.ResolvedImage{}, err
	}
	res, err := images.Resolve(ctx, r.s.Content, img.Target, platform)
	if err != nil {
		return dockerfile.ResolvedImage{}, fmt.Errorf("resolve %s: %w", images.Familiar(name), err)
	}
	return dockerfile.ResolvedImage{Ref: name, Digest: res.ManifestDesc.Digest, Config: res.Config, ConfigJSON: res.ConfigBytes}, nil
}
