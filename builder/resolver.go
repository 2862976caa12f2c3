package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/frontend/dockerfile"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/store"
)

// resolver finds base images in the local image store, pulling from the
// image's registry what is missing there, or everything when pull is set
// (--pull). A reference by digest is never pulled again once stored.
type resolver struct {
	st       *store.Store
	pull     bool
	registry registry.Options
}

func (r *resolver) ResolveImage(ctx context.Context, ref string, platform ocispec.Platform) (dockerfile.ResolvedImage, error) {
	name, err := images.Normalize(ref)
	if err != nil {
		return dockerfile.ResolvedImage{}, err
	}
	if !r.pull || strings.Contains(name, "@") {
		ri, err := r.local(ctx, name, platform)
		if !errors.Is(err, errdefs.ErrNotFound) {
			return ri, err
		}
	}
	if _, err := r.st.Pull(ctx, name, store.PullOptions{Platform: platform, Registry: r.registry}); err != nil {
		if r.pull {
			return dockerfile.ResolvedImage{}, err
		}
		return dockerfile.ResolvedImage{}, fmt.Errorf("image %s not found in the local store and could not be pulled: %w", images.Familiar(name), err)
	}
	return r.local(ctx, name, platform)
}

// local resolves name in the local store; the error wraps
// errdefs.ErrNotFound when the image or the platform's manifest is
// missing.
func (r *resolver) local(ctx context.Context, name string, platform ocispec.Platform) (dockerfile.ResolvedImage, error) {
	parts := r.st.Parts()
	img, err := parts.Images.Get(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		// A digest names content, whichever name brought it into the store.
		if _, dgst, ok := strings.Cut(name, "@"); ok {
			info, ierr := parts.Content.Info(ctx, digest.Digest(dgst))
			if ierr != nil {
				return dockerfile.ResolvedImage{}, errors.Join(err, ierr)
			}
			img.Target, err = ocispec.Descriptor{Digest: info.Digest, Size: info.Size}, nil
		}
	}
	if err != nil {
		return dockerfile.ResolvedImage{}, err
	}
	res, err := images.Resolve(ctx, parts.Content, img.Target, platform)
	if err != nil {
		return dockerfile.ResolvedImage{}, fmt.Errorf("resolve %s: %w", images.Familiar(name), err)
	}
	return dockerfile.ResolvedImage{Ref: name, Digest: res.ManifestDesc.Digest, Config: res.Config, ConfigJSON: res.ConfigBytes}, nil
}
