package builder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/frontend/dockerfile"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/remotecache"
	"github.com/strata-build/strata/store"
)

// resolver finds base images in the local image store, resolving in the
// image's registry those missing there, or all when pull is set (--pull).
// A reference by digest is never resolved again once stored.
//
// A resolved image's manifests and config are stored, its layers are not:
// blobs learns where they are, and the build fetches them only if a step
// reads the image's files (a fully cached build never does). tagFetched
// then tags the images whose layers came in.
type resolver struct {
	st       *store.Store
	pull     bool
	registry registry.Options
	blobs    *remotecache.Blobs

	mu      sync.Mutex
	pending []images.Image
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
	res, err := r.st.PullMetadata(ctx, name, store.PullOptions{Platform: platform, Registry: r.registry})
	if err != nil {
		if r.pull {
			return dockerfile.ResolvedImage{}, err
		}
		return dockerfile.ResolvedImage{}, fmt.Errorf("image %s not found in the local store and could not be pulled: %w", images.Familiar(name), err)
	}
	ri, err := r.resolved(ctx, name, res.Image.Target, platform)
	if err != nil {
		return ri, err
	}
	r.mu.Lock()
	r.pending = append(r.pending, res.Image)
	r.mu.Unlock()
	return ri, nil
}

// resolved is the image target names for platform, from the content
// store; blobs learns that the layers the store lacks are in name's
// repository (a digest resolved by an earlier build may lack them too).
func (r *resolver) resolved(ctx context.Context, name string, target ocispec.Descriptor, platform ocispec.Platform) (dockerfile.ResolvedImage, error) {
	cs := r.st.Parts().Content
	res, err := images.Resolve(ctx, cs, target, platform)
	if err != nil {
		return dockerfile.ResolvedImage{}, fmt.Errorf("resolve %s: %w", images.Familiar(name), err)
	}
	for _, l := range res.Manifest.Layers {
		if _, err := cs.Info(ctx, l.Digest); err != nil {
			r.blobs.Add(remotecache.RegistrySource(name, r.registry), l)
		}
	}
	return dockerfile.ResolvedImage{Ref: name, Digest: res.ManifestDesc.Digest, Config: res.Config, ConfigJSON: res.ConfigBytes}, nil
}

// tagFetched tags each image resolved from a registry whose layers are all
// in the store now (a step read it), as a pull would have: the next build
// finds it without asking the registry. The others stay untagged: the
// store holds no image it cannot export.
func (r *resolver) tagFetched(ctx context.Context, platform ocispec.Platform) error {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	parts := r.st.Parts()
	for _, img := range pending {
		res, err := images.Resolve(ctx, parts.Content, img.Target, platform)
		if err != nil {
			return err
		}
		complete := true
		for _, l := range res.Manifest.Layers {
			if _, err := parts.Content.Info(ctx, l.Digest); err != nil {
				complete = false
				break
			}
		}
		if !complete {
			continue
		}
		if old, err := parts.Images.Get(ctx, img.Name); err == nil && old.Target.Digest == img.Target.Digest {
			continue
		}
		if err := parts.Images.Put(ctx, img); err != nil {
			return err
		}
	}
	return nil
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
	return r.resolved(ctx, name, img.Target, platform)
}
