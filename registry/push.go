package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry/hosts"
)

// Pusher pushes images from a content store to registries.
//
// One push sends an image manifest, or an index with every manifest it
// names, to one or several names. Per repository: every blob (configs and
// layers) first, at most Options.Jobs at once; then the manifests, children
// before the index naming them; then the target under each tag. A crash at
// any moment thus leaves at most blobs nobody names in the registry, never a
// tag whose content is missing. A blob the repository already holds is
// skipped after a HEAD; one that Options.Sources (or an earlier repository
// of the same push) places in another repository of the same registry is
// mounted from there; the rest are uploaded from the content store exactly
// as stored, never recompressed. When the repository already holds the
// target (a HEAD of its digest), the blobs need no HEAD each: a registry
// accepts a manifest only once all it names is in the repository, so a
// push that changes nothing costs the ping, that HEAD and the tags' PUTs.
// Transient failures (5xx, 408, 429, broken connections) are retried with
// backoff, restarting the upload.
//
// A registry host is reached through Options.Hosts' PushEndpoint: the host
// itself (never a mirror), with its scheme, TLS and credentials.
type Pusher struct {
	// pl shares the Puller's defaults for Options.
	pl *Puller
}

// NewPusher returns a Pusher reading blobs from cs. Options are defaulted as
// for New; Progress receives one vertex per push ("pushing NAME").
func NewPusher(cs *content.Store, opts Options) *Pusher {
	return &Pusher{pl: New(cs, nil, opts)}
}

// PushResult is what one push did.
type PushResult struct {
	// Target is the manifest or index pushed, with its media type and size
	// as read from the content store.
	Target ocispec.Descriptor
	// Refs are the names pushed, normalized and pinned to the target's
	// digest ("127.0.0.1:5000/app:1@sha256:..."), in the order given.
	Refs []string
	// Uploaded, Skipped and Mounted count blobs (configs and layers), once
	// per repository: sent from the content store, already present in the
	// repository, and mounted from another repository of the registry.
	Uploaded, Skipped, Mounted int
	// UploadedBytes sums the sizes of the blobs uploaded.
	UploadedBytes int64
	// Manifests counts the manifests and indexes written, once per tag.
	Manifests int
	// Retries counts the attempts repeated after a transient failure.
	Retries int
}

// pushName is one name of a push.
type pushName struct {
	normalized string
	ref        name.Reference
}

// pushRepo is one repository of a push and the names that go to it.
type pushRepo struct {
	// source is the repository as BlobSources spell it ("host/path").
	source string
	// host is the registry as the names spell it ("docker.io").
	host  string
	ep    hosts.Endpoint
	repo  name.Repository
	names []pushName
}

// Push sends desc, a manifest or index in the content store, with all it
// names to every name in names ("127.0.0.1:5000/app:1", "user/app", or a
// name with desc's digest). Names in one repository share the blob uploads.
// An index child the store lacks (a sparse index, as pulls leave them) is an
// error naming its platform. An authentication failure wraps ErrAuth.
func (p *Pusher) Push(ctx context.Context, desc ocispec.Descriptor, names []string) (PushResult, error) {
	return p.PushWith(ctx, desc, names, PushOptions{})
}

// PushOptions tunes one push for callers that know more than the content
// store tells (a build cache export).
type PushOptions struct {
	// Present are blobs known to be in every target repository (its own
	// earlier push named them): they are neither checked nor uploaded, and
	// need not be in the content store.
	Present []digest.Digest
	// SkipUnchanged leaves a name alone when the registry already has it
	// pointing at the target: a push that changes nothing writes nothing.
	SkipUnchanged bool
	// Fetch, if set, stores a blob of the image that the content store
	// lacks (a layer known to live elsewhere, not yet downloaded). It is
	// called only for a blob that must be uploaded: one the repository
	// neither has nor could mount, once per blob whatever the number of
	// repositories. Without it such a blob fails the push.
	Fetch func(ctx context.Context, b ocispec.Descriptor) error
}

// PushWith is Push with opts.
func (p *Pusher) PushWith(ctx context.Context, desc ocispec.Descriptor, names []string, opts PushOptions) (PushResult, error) {
	if len(names) == 0 {
		return PushResult{}, fmt.Errorf("push %s: no name to push to", desc.Digest)
	}
	if p.pl.hostsErr != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", desc.Digest, p.pl.hostsErr)
	}
	repos, display, err := p.repositories(names, desc.Digest)
	if err != nil {
		return PushResult{}, err
	}
	var all []string
	for _, r := range repos {
		for _, n := range r.names {
			all = append(all, n.normalized)
		}
	}
	sink := p.pl.opts.Progress
	v := progress.Event{Vertex: digest.FromString("push " + desc.Digest.String() + " " + strings.Join(all, " ")), Name: "pushing " + display}
	emit := func(e progress.Event) {
		e.Vertex, e.Name, e.Time = v.Vertex, v.Name, time.Now()
		sink.Emit(e)
	}
	emit(progress.Event{Status: progress.Started})
	res, err := p.push(ctx, desc, repos, display, opts, emit)
	if err != nil {
		emit(progress.Event{Status: progress.Error, Err: err.Error()})
		return PushResult{}, err
	}
	emit(progress.Event{Status: progress.Done, Bytes: res.UploadedBytes})
	return res, nil
}

// repositories normalizes names and groups them by repository, in the order
// of first appearance. display is the familiar names joined for messages.
func (p *Pusher) repositories(names []string, target digest.Digest) ([]*pushRepo, string, error) {
	var repos []*pushRepo
	byRepo := map[string]*pushRepo{}
	familiar := make([]string, 0, len(names))
	for _, n := range names {
		normalized, err := images.Normalize(n)
		if err != nil {
			return nil, "", fmt.Errorf("push %s: %w", n, err)
		}
		parsed, err := parseName(normalized)
		if err != nil {
			return nil, "", fmt.Errorf("push %s: %w", n, err)
		}
		if d, ok := parsed.(name.Digest); ok && d.DigestStr() != target.String() {
			return nil, "", fmt.Errorf("push %s: the name's digest differs from the image's %s", n, target)
		}
		host := registryHost(normalized)
		ep, err := p.pl.opts.Hosts.PushEndpoint(host)
		if err != nil {
			return nil, "", fmt.Errorf("push %s: %w", n, err)
		}
		r, err := ep.Reference(parsed)
		if err != nil {
			return nil, "", fmt.Errorf("push %s: %w", n, err)
		}
		familiar = append(familiar, images.Familiar(normalized))
		src := repositoryOf(normalized)
		pr := byRepo[src]
		if pr == nil {
			pr = &pushRepo{source: src, host: host, ep: ep, repo: r.Context()}
			byRepo[src] = pr
			repos = append(repos, pr)
		}
		pr.names = append(pr.names, pushName{normalized: normalized, ref: r})
	}
	return repos, strings.Join(familiar, ", "), nil
}

func (p *Pusher) push(ctx context.Context, desc ocispec.Descriptor, repos []*pushRepo, display string, opts PushOptions, emit func(progress.Event)) (PushResult, error) {
	present := make(map[digest.Digest]bool, len(opts.Present))
	for _, d := range opts.Present {
		present[d] = true
	}
	g, err := p.graph(ctx, desc, present, opts.Fetch != nil)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", display, err)
	}
	// local remembers what this push placed, so that a later repository of
	// the same registry mounts instead of uploading again.
	local := &MemorySources{}
	res := PushResult{Target: g.manifests[len(g.manifests)-1].desc}
	fetch := &onceFetch{fn: opts.Fetch, done: map[digest.Digest]*fetchCall{}}
	for _, r := range repos {
		rp := &repoPusher{p: p, ep: r.ep, repo: r.repo, source: r.source, local: local, emit: emit, opts: opts, fetch: fetch}
		if err := rp.run(ctx, g, r.names); err != nil {
			return PushResult{}, fmt.Errorf("push %s to registry %s: %w", images.Familiar(r.source), r.host, hosts.CheckAuth(r.host, err))
		}
		res.Uploaded += int(rp.uploaded.Load())
		res.Skipped += int(rp.skipped.Load())
		res.Mounted += int(rp.mounted.Load())
		res.UploadedBytes += rp.uploadedBytes.Load()
		res.Manifests += int(rp.manifests.Load())
		res.Retries += int(rp.retries.Load())
		for _, n := range r.names {
			ref := n.normalized
			if _, ok := n.ref.(name.Digest); !ok {
				ref += "@" + res.Target.Digest.String()
			}
			res.Refs = append(res.Refs, ref)
		}
	}
	return res, nil
}

// pushGraph is what one push sends.
type pushGraph struct {
	// manifests are in the order they go up: children before the index
	// naming them, the target last.
	manifests []manifestBlob
	// blobs are the configs and layers of every manifest, each digest once.
	blobs []ocispec.Descriptor
	// known are blobs the caller knows the repositories hold.
	known []ocispec.Descriptor
}

// graph reads desc and everything it names from the content store, and
// checks that every blob to push is there with its size.
func (p *Pusher) graph(ctx context.Context, desc ocispec.Descriptor, present map[digest.Digest]bool, lazy bool) (*pushGraph, error) {
	cs := p.pl.content
	g := &pushGraph{}
	seenManifest := map[digest.Digest]bool{}
	seenBlob := map[digest.Digest]bool{}
	var visit func(d ocispec.Descriptor, depth int) error
	visit = func(d ocispec.Descriptor, depth int) error {
		if seenManifest[d.Digest] {
			return nil
		}
		if depth > maxIndexDepth {
			return fmt.Errorf("manifest %s: indexes nested deeper than %d", d.Digest, maxIndexDepth)
		}
		if info, err := cs.Info(ctx, d.Digest); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		} else if info.Size > maxManifestSize {
			return fmt.Errorf("manifest %s: %d bytes, more than %d", d.Digest, info.Size, maxManifestSize)
		}
		raw, err := cs.ReadBlob(ctx, d.Digest)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		if d.Size > 0 && int64(len(raw)) != d.Size {
			return fmt.Errorf("manifest %s: %d bytes in the content store, the descriptor says %d", d.Digest, len(raw), d.Size)
		}
		d.MediaType, d.Size = manifestMediaType(d.MediaType, raw), int64(len(raw))
		switch {
		case images.IsIndex(d.MediaType):
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return fmt.Errorf("decode index %s: %w", d.Digest, err)
			}
			for _, c := range idx.Manifests {
				if err := c.Digest.Validate(); err != nil {
					return fmt.Errorf("index %s: invalid manifest digest %q: %w", d.Digest, c.Digest, err)
				}
				if _, err := cs.Info(ctx, c.Digest); errors.Is(err, errdefs.ErrNotFound) {
					return fmt.Errorf("index %s: the manifest for platform %s (%s) is not in the content store: the index is sparse (only some platforms were pulled); push one platform's manifest instead, or pull them all", d.Digest, platformName(c.Platform), c.Digest)
				}
				if err := visit(c, depth+1); err != nil {
					return err
				}
			}
		case images.IsManifest(d.MediaType):
			var m ocispec.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("decode manifest %s: %w", d.Digest, err)
			}
			if m.Config.Digest == "" {
				return fmt.Errorf("manifest %s has no config", d.Digest)
			}
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if err := b.Digest.Validate(); err != nil {
					return fmt.Errorf("manifest %s: invalid blob digest %q: %w", d.Digest, b.Digest, err)
				}
				if seenBlob[b.Digest] {
					continue
				}
				if present[b.Digest] {
					seenBlob[b.Digest] = true
					g.known = append(g.known, b)
					continue
				}
				info, err := cs.Info(ctx, b.Digest)
				if errors.Is(err, errdefs.ErrNotFound) && len(b.URLs) > 0 {
					continue // non-distributable: the registry fetches it from its URLs
				}
				if errors.Is(err, errdefs.ErrNotFound) && lazy && b.Digest != m.Config.Digest {
					seenBlob[b.Digest] = true
					g.blobs = append(g.blobs, b) // PushOptions.Fetch brings it if it must be uploaded
					continue
				}
				if err != nil {
					return fmt.Errorf("manifest %s: blob %s: %w", d.Digest, b.Digest, err)
				}
				if info.Size != b.Size {
					return fmt.Errorf("manifest %s: blob %s has %d bytes in the content store, the manifest says %d", d.Digest, b.Digest, info.Size, b.Size)
				}
				seenBlob[b.Digest] = true
				g.blobs = append(g.blobs, b)
			}
		default:
			return fmt.Errorf("manifest %s: unsupported media type %q", d.Digest, d.MediaType)
		}
		seenManifest[d.Digest] = true
		g.manifests = append(g.manifests, manifestBlob{desc: d, raw: raw})
		return nil
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid digest %q: %w", desc.Digest, err)
	}
	if err := visit(desc, 0); err != nil {
		return nil, err
	}
	return g, nil
}

// manifestMediaType is the media type a manifest is pushed with: its own
// mediaType field, else the one its descriptor gives, else what its shape
// says.
func manifestMediaType(given string, raw []byte) string {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		return probe.MediaType
	}
	if given != "" {
		return given
	}
	return images.SniffMediaType(raw)
}

// platformName formats p for messages; "unknown" when there is none.
func platformName(p *ocispec.Platform) string {
	if p == nil {
		return "unknown"
	}
	return images.PlatformString(*p)
}

// repoPusher is one push's work in one repository.
type repoPusher struct {
	p      *Pusher
	ep     hosts.Endpoint
	repo   name.Repository
	source string
	local  *MemorySources
	emit   func(progress.Event)
	client *client
	// mountFrom lists, per blob, the repositories (paths on this registry)
	// to try mounting it from.
	mountFrom map[digest.Digest][]string

	opts  PushOptions
	fetch *onceFetch

	uploaded, skipped, mounted, manifests, retries atomic.Int64
	uploadedBytes                                  atomic.Int64
}

// maxMountTries bounds the repositories a blob is mounted from before it
// is uploaded; maxMountRepos bounds the source repositories of one push (each
// is a pull scope in the token request).
const (
	maxMountTries = 3
	maxMountRepos = 16
)

// run pushes the blobs, then the manifests, then the tags of names.
func (r *repoPusher) run(ctx context.Context, g *pushGraph, names []pushName) error {
	r.planMounts(g.blobs)
	var sources []name.Repository
	seen := map[string]bool{}
	for _, b := range g.blobs {
		for _, s := range r.mountFrom[b.Digest] {
			if !seen[s] {
				seen[s] = true
				sources = append(sources, r.repo.Registry.Repo(s))
			}
		}
	}
	err := r.retry(ctx, "reach registry", func() (err error) {
		r.client, err = r.p.newClient(ctx, r.ep, r.repo, sources)
		return err
	})
	if err != nil {
		return err
	}

	target := g.manifests[len(g.manifests)-1]
	present := r.hasManifest(ctx, target)
	if present {
		// A registry takes a manifest only once all it names is in the
		// repository, so this one's blobs need no HEAD each.
		r.skipped.Add(int64(len(g.blobs)))
		for _, b := range g.blobs {
			r.record(b.Digest)
		}
		r.log("manifest %s: already in %s, with its %d blobs", target.desc.Digest, images.Familiar(r.source), len(g.blobs))
	} else {
		r.skipped.Add(int64(len(g.known)))
		for _, b := range g.known {
			r.record(b.Digest)
		}
		eg, gctx := errgroup.WithContext(ctx)
		eg.SetLimit(r.p.pl.opts.Jobs)
		for _, b := range g.blobs {
			eg.Go(func() error { return r.pushBlob(gctx, b) })
		}
		if err := eg.Wait(); err != nil {
			return r.explainAuth(ctx, err)
		}
		for _, m := range g.manifests[:len(g.manifests)-1] {
			if err := r.putManifest(ctx, m, m.desc.Digest.String(), ""); err != nil {
				return err
			}
		}
	}
	done := map[string]bool{}
	for _, n := range names {
		id := n.ref.Identifier()
		if done[id] {
			continue
		}
		done[id] = true
		if _, byDigest := n.ref.(name.Digest); byDigest && present {
			continue
		}
		if present && r.opts.SkipUnchanged && r.tagIs(ctx, id, target.desc.Digest) {
			r.log("%s: already %s", images.Familiar(n.normalized), target.desc.Digest)
			continue
		}
		if err := r.putManifest(ctx, target, id, images.Familiar(n.normalized)); err != nil {
			return err
		}
	}
	return nil
}

// planMounts fills mountFrom from the push's own record and
// Options.Sources: repositories of this registry other than this one.
func (r *repoPusher) planMounts(blobs []ocispec.Descriptor) {
	r.mountFrom = map[digest.Digest][]string{}
	repos := map[string]bool{}
	for _, b := range blobs {
		cands := r.local.Sources(b.Digest)
		if s := r.p.pl.opts.Sources; s != nil {
			cands = append(cands, s.Sources(b.Digest)...)
		}
		var from []string
		for _, c := range cands {
			src, err := name.NewRepository(c)
			if err != nil || src.RegistryStr() != r.repo.RegistryStr() || src.RepositoryStr() == r.repo.RepositoryStr() {
				continue
			}
			path := src.RepositoryStr()
			if slices.Contains(from, path) {
				continue
			}
			if !repos[path] && len(repos) >= maxMountRepos {
				continue
			}
			repos[path] = true
			from = append(from, path)
			if len(from) == maxMountTries {
				break
			}
		}
		if len(from) > 0 {
			r.mountFrom[b.Digest] = from
		}
	}
}

// log emits one line of the push's vertex.
func (r *repoPusher) log(format string, args ...any) {
	r.emit(progress.Event{Status: progress.Log, Stream: 1, Data: fmt.Appendf(nil, format+"\n", args...)})
}

// record notes that d now lives in this repository.
func (r *repoPusher) record(d digest.Digest) {
	r.local.Add(d, r.source)
	if s := r.p.pl.opts.Sources; s != nil {
		s.Add(d, r.source)
	}
}

// humanBytes formats n in binary units for progress lines.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// onceFetch calls PushOptions.Fetch at most once per blob, however many
// repositories ask for it at once; a failed call is tried again by the
// next caller (the push retries transient failures).
type onceFetch struct {
	fn   func(context.Context, ocispec.Descriptor) error
	mu   sync.Mutex
	done map[digest.Digest]*fetchCall
}

type fetchCall struct {
	mu sync.Mutex
	ok bool
}

func (f *onceFetch) fetch(ctx context.Context, b ocispec.Descriptor) error {
	f.mu.Lock()
	c := f.done[b.Digest]
	if c == nil {
		c = &fetchCall{}
		f.done[b.Digest] = c
	}
	f.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok {
		return nil
	}
	if f.fn == nil {
		return fmt.Errorf("blob %s is not in the content store", b.Digest)
	}
	if err := f.fn(ctx, b); err != nil {
		return fmt.Errorf("fetch blob %s to push it: %w", b.Digest, err)
	}
	c.ok = true
	return nil
}
