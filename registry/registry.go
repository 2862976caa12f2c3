// Package registry pulls images from OCI distribution registries (Docker
// Hub, ghcr.io, a registry on localhost, ...) into strata's content store and
// tags them in the local image store, and pushes images from the content
// store to registries (see Pusher).
//
// Vocabulary:
//   - A reference is what a user types ("busybox", "127.0.0.1:5000/app:1",
//     "alpine@sha256:..."); it is normalized as cache/images does, and the
//     normalized name is the tag a pull writes.
//   - The target is what the reference names in the registry: an image
//     manifest, or an index (manifest list) of one manifest per platform.
//     The target is stored whole; from an index only the manifest of the
//     requested platform is fetched, so a stored index may name manifests
//     the store does not hold (a sparse index, as containerd keeps them).
//   - Blobs are a manifest's config and layers. Each is streamed into an
//     ingest of the content store, hashed on the way, and committed only if
//     digest and size match the manifest; blobs already present are skipped.
//   - A registry is insecure when it is reached over plain HTTP: always for
//     localhost and loopback addresses, and for the hosts listed in
//     STRATA_INSECURE_REGISTRIES (comma or space separated, "host[:port]").
//
// One pull: blobs first, then manifests, then the index, then the tag, so a
// crash at any moment leaves at most unreferenced blobs, never a tag whose
// content is missing. Credentials come from a keychain, by default
// authn.DefaultKeychain: $DOCKER_CONFIG/config.json or ~/.docker/config.json,
// with its credential helpers.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
)

// Options configures how a Puller reaches registries.
type Options struct {
	// Keychain finds credentials per registry; nil means
	// authn.DefaultKeychain (the docker config file and its helpers).
	Keychain authn.Keychain
	// Transport carries the HTTP requests; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Insecure lists registries ("host" or "host:port") reached over plain
	// HTTP besides localhost and loopback; nil means the list in
	// STRATA_INSECURE_REGISTRIES.
	Insecure []string
	// Jobs bounds the blobs fetched at once; 0 means 4.
	Jobs int
	// Progress receives one vertex per pull ("pull NAME") with a log line
	// per fetched blob; nil discards.
	Progress progress.Sink
	// Sources, if set, learns the repository of every blob pulled or
	// pushed, and tells a push where to mount blobs from.
	Sources BlobSources
}

// Puller pulls images into one content store and image store.
type Puller struct {
	content *content.Store
	images  *images.Store
	opts    Options
}

// New returns a Puller writing blobs to cs and tags to is.
func New(cs *content.Store, is *images.Store, opts Options) *Puller {
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = remote.DefaultTransport
	}
	if opts.Insecure == nil {
		opts.Insecure = InsecureFromEnv()
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	return &Puller{content: cs, images: is, opts: opts}
}

// Result is what one pull stored.
type Result struct {
	// Image is the tag written: the normalized name and its target (the
	// index or manifest the reference names).
	Image images.Image
	// Manifest is the manifest of the requested platform (equal to
	// Image.Target when the reference names a manifest).
	Manifest ocispec.Descriptor
	// Registry is the host the image came from ("index.docker.io",
	// "127.0.0.1:5000").
	Registry string
	// Updated is true when the tag is new or moved to a new target.
	Updated bool
	// Fetched and Present count the blobs (config and layers) downloaded
	// and those the store already held; FetchedBytes sums the former.
	Fetched, Present int
	FetchedBytes     int64
}

// Pull resolves ref in its registry, fetches the platform's manifest, config
// and layers into the content store, stores the target and tags it with the
// normalized ref. An index without a manifest for platform is an error.
func (p *Puller) Pull(ctx context.Context, ref string, platform ocispec.Platform) (Result, error) {
	normalized, err := images.Normalize(ref)
	if err != nil {
		return Result{}, err
	}
	r, err := p.parse(normalized)
	if err != nil {
		return Result{}, err
	}
	host := r.Context().RegistryStr()
	sink := p.opts.Progress
	v := progress.Event{Vertex: digest.FromString("pull " + normalized), Name: "pull " + images.Familiar(normalized)}
	emit := func(e progress.Event) {
		e.Vertex, e.Name, e.Time = v.Vertex, v.Name, time.Now()
		sink.Emit(e)
	}
	emit(progress.Event{Status: progress.Started})
	res, err := p.pull(ctx, r, normalized, platform, emit)
	if err != nil {
		err = fmt.Errorf("pull %s from registry %s: %w", images.Familiar(normalized), host, authError(host, err))
		emit(progress.Event{Status: progress.Error, Err: err.Error()})
		return Result{}, err
	}
	res.Registry = host
	emit(progress.Event{Status: progress.Done})
	return res, nil
}

func (p *Puller) pull(ctx context.Context, r name.Reference, normalized string, platform ocispec.Platform, emit func(progress.Event)) (Result, error) {
	pl, err := remote.NewPuller(remote.WithAuthFromKeychain(p.opts.Keychain), remote.WithTransport(p.opts.Transport), remote.WithContext(ctx))
	if err != nil {
		return Result{}, err
	}
	f := &fetcher{p: p, pl: pl, repo: r.Context(), source: repositoryOf(normalized), emit: emit}
	var want digest.Digest
	if d, ok := r.(name.Digest); ok {
		want = digest.Digest(d.DigestStr())
	}
	chain, err := f.manifests(ctx, r, want, images.DefaultPlatform(platform))
	if err != nil {
		return Result{}, err
	}
	m := chain[len(chain)-1]
	res := Result{Manifest: m.desc}
	if err := f.blobs(ctx, m, &res); err != nil {
		return Result{}, err
	}
	// Children before parents: the tag goes last.
	for i := len(chain) - 1; i >= 0; i-- {
		if err := p.content.WriteBlob(ctx, bytesReader(chain[i].raw), chain[i].desc.Size, chain[i].desc.Digest); err != nil {
			return Result{}, fmt.Errorf("store manifest %s: %w", chain[i].desc.Digest, err)
		}
	}
	target := chain[0].desc
	old, err := p.images.Get(ctx, normalized)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		res.Updated = true
	case err != nil:
		return Result{}, err
	default:
		res.Updated = old.Target.Digest != target.Digest
	}
	if !res.Updated {
		res.Image = old
		return res, nil
	}
	if err := p.images.Put(ctx, images.Image{Name: normalized, Target: target}); err != nil {
		return Result{}, err
	}
	if res.Image, err = p.images.Get(ctx, normalized); err != nil {
		return Result{}, err
	}
	return res, nil
}
