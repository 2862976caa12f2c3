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
//
// How a registry host is reached is package hosts' business (Options.Hosts):
// the registry configuration file (mirrors, plain HTTP, TLS), certs.d, the
// hosts reached over plain HTTP (loopback, STRATA_INSECURE_REGISTRIES),
// timeouts, retries of transient failures, and credentials from the docker
// config file. A pull tries the host's mirrors in order, then the host
// itself; a push goes to the host alone.
//
// One pull: blobs first, then manifests, then the index, then the tag, so a
// crash at any moment leaves at most unreferenced blobs, never a tag whose
// content is missing. What a registry sends is bounded and checked: a
// manifest or index holds at most 4 MiB, a config at most 8 MiB, a layer
// the size its manifest gives; every manifest and blob must have the digest
// it is fetched by, and a manifest fetched by tag the digest the registry
// announces (Docker-Content-Digest).
package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry/hosts"
)

// Options configures a Puller or a Pusher.
type Options struct {
	// Hosts decides how each registry host is reached: mirrors, scheme,
	// TLS, timeouts, retries and credentials. nil means a Resolver of the
	// default registry configuration file (hosts.LoadConfig("")); if that
	// file cannot be read, every Pull and Push returns the error. A push
	// to an output marked registry.insecure=true passes
	// resolver.WithInsecure(host).
	Hosts *hosts.Resolver
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
	// hostsErr is why the default Resolver could not be built.
	hostsErr error
}

// New returns a Puller writing blobs to cs and tags to is.
func New(cs *content.Store, is *images.Store, opts Options) *Puller {
	var hostsErr error
	if opts.Hosts == nil {
		cfg, err := hosts.LoadConfig("")
		if err != nil {
			hostsErr = err
		} else {
			opts.Hosts = hosts.NewResolver(hosts.Options{Config: cfg})
		}
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	return &Puller{content: cs, images: is, opts: opts, hostsErr: hostsErr}
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
	// "127.0.0.1:5000"): the registry of the name, or one of its mirrors.
	Registry string
	// Mirror is true when Registry is a mirror of the name's registry.
	Mirror bool
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
//
// The registry's mirrors are tried first, in order, with the same
// repository path, then the registry itself: a mirror that fails in any way
// (unreachable, refusing the credentials, lacking the image, sending bad
// content) passes the pull to the next endpoint, and the error of the last
// one is returned, after the mirrors' in its text. Whichever endpoint
// serves it, the image is tagged with the normalized ref. A refusal of
// credentials by the last endpoint wraps ErrAuth.
func (p *Puller) Pull(ctx context.Context, ref string, platform ocispec.Platform) (Result, error) {
	return p.get(ctx, ref, platform, true)
}

// Resolve is Pull without the layers and without the tag: the manifests
// and the config go to the content store and Sources learns where every
// layer lives, so a build can key its steps on the image and fetch the
// layers (FetchBlobsEach) only if a step reads them. Result.Image names
// the tag a pull would write.
func (p *Puller) Resolve(ctx context.Context, ref string, platform ocispec.Platform) (Result, error) {
	return p.get(ctx, ref, platform, false)
}

// get is Pull (layers and tag) or Resolve.
func (p *Puller) get(ctx context.Context, ref string, platform ocispec.Platform, full bool) (Result, error) {
	normalized, err := images.Normalize(ref)
	if err != nil {
		return Result{}, err
	}
	if p.hostsErr != nil {
		return Result{}, fmt.Errorf("pull %s: %w", images.Familiar(normalized), p.hostsErr)
	}
	r, err := parseName(normalized)
	if err != nil {
		return Result{}, err
	}
	host := registryHost(normalized)
	sink := p.opts.Progress
	v := progress.Event{Vertex: digest.FromString("pull " + normalized), Name: "pull " + images.Familiar(normalized)}
	emit := func(e progress.Event) {
		e.Vertex, e.Name, e.Time = v.Vertex, v.Name, time.Now()
		sink.Emit(e)
	}
	if !full {
		v.Name = "[internal] load metadata for " + images.Familiar(normalized)
		v.Vertex = digest.FromString("resolve " + normalized)
	}
	emit(progress.Event{Status: progress.Started})
	res, err := p.pullEndpoints(ctx, r, host, normalized, platform, full, emit)
	if err != nil {
		err = fmt.Errorf("pull %s from registry %s: %w", images.Familiar(normalized), host, err)
		emit(progress.Event{Status: progress.Error, Err: err.Error()})
		return Result{}, err
	}
	emit(progress.Event{Status: progress.Done, Bytes: res.FetchedBytes})
	return res, nil
}

// pullEndpoints pulls r from the first of host's pull endpoints that
// serves it.
func (p *Puller) pullEndpoints(ctx context.Context, r name.Reference, host, normalized string, platform ocispec.Platform, full bool, emit func(progress.Event)) (Result, error) {
	var res Result
	ep, err := p.eachEndpoint(ctx, host, emit, func(ep hosts.Endpoint) (err error) {
		res, err = p.pull(ctx, ep, r, normalized, platform, full, emit)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	res.Registry, res.Mirror = ep.Host, ep.Mirror
	return res, nil
}

// eachEndpoint calls try with each of host's pull endpoints in turn (its
// mirrors, then the host) until one succeeds, and returns that one. Each
// endpoint's error goes through hosts.CheckAuth; the mirrors' are named in
// the text of the last one's, and each fall-through is logged to emit.
func (p *Puller) eachEndpoint(ctx context.Context, host string, emit func(progress.Event), try func(hosts.Endpoint) error) (hosts.Endpoint, error) {
	eps, err := p.opts.Hosts.PullEndpoints(host)
	if err != nil {
		return hosts.Endpoint{}, err
	}
	var failed []string
	for i, ep := range eps {
		err := try(ep)
		if err == nil {
			return ep, nil
		}
		err = hosts.CheckAuth(ep.Host, err)
		if i == len(eps)-1 || ctx.Err() != nil {
			if len(failed) > 0 {
				return hosts.Endpoint{}, fmt.Errorf("%s; %s: %w", strings.Join(failed, "; "), endpointName(ep, host), err)
			}
			return hosts.Endpoint{}, err
		}
		failed = append(failed, fmt.Sprintf("%s: %v", endpointName(ep, host), err))
		emit(progress.Event{Status: progress.Log, Stream: 2, Data: fmt.Appendf(nil, "%s: %v; trying %s\n", endpointName(ep, host), err, endpointName(eps[i+1], host))})
	}
	return hosts.Endpoint{}, errors.New("no endpoint to pull from") // PullEndpoints gives at least the host
}

// newFetcher connects to r's repository on ep: the endpoint's options,
// with its transport under a guard that bounds and checks the manifests
// as they arrive (a later WithTransport replaces the earlier). It returns
// the fetcher and r as the endpoint names it.
func (p *Puller) newFetcher(ctx context.Context, ep hosts.Endpoint, r name.Reference, normalized string, emit func(progress.Event)) (*fetcher, name.Reference, error) {
	epRef, err := ep.Reference(r)
	if err != nil {
		return nil, nil, err
	}
	opts := append(ep.RemoteOptions(), remote.WithTransport(manifestGuard{inner: ep.Transport}), remote.WithContext(ctx))
	pl, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, nil, err
	}
	return &fetcher{p: p, pl: pl, repo: epRef.Context(), source: repositoryOf(normalized), emit: emit}, epRef, nil
}

// endpointName names an endpoint in messages: "mirror HOST", or the
// registry as the name spells it ("docker.io").
func endpointName(ep hosts.Endpoint, host string) string {
	if ep.Mirror {
		return "mirror " + ep.Host
	}
	return host
}

// pull pulls r from one endpoint and tags it as normalized; without full,
// only the manifests and config are stored and nothing is tagged.
func (p *Puller) pull(ctx context.Context, ep hosts.Endpoint, r name.Reference, normalized string, platform ocispec.Platform, full bool, emit func(progress.Event)) (Result, error) {
	f, epRef, err := p.newFetcher(ctx, ep, r, normalized, emit)
	if err != nil {
		return Result{}, err
	}
	var want digest.Digest
	if d, ok := r.(name.Digest); ok {
		want = digest.Digest(d.DigestStr())
	}
	chain, err := f.manifests(ctx, epRef, want, images.DefaultPlatform(platform))
	if err != nil {
		return Result{}, err
	}
	m := chain[len(chain)-1]
	res := Result{Manifest: m.desc}
	if err := f.blobs(ctx, m, full, &res); err != nil {
		return Result{}, err
	}
	// Children before parents: the tag goes last.
	for i := len(chain) - 1; i >= 0; i-- {
		if err := p.content.WriteBlob(ctx, bytesReader(chain[i].raw), chain[i].desc.Size, chain[i].desc.Digest); err != nil {
			return Result{}, fmt.Errorf("store manifest %s: %w", chain[i].desc.Digest, err)
		}
	}
	target := chain[0].desc
	if !full {
		res.Image = images.Image{Name: normalized, Target: target}
		return res, nil
	}
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
