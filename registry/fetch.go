package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/progress"
)

// maxIndexDepth bounds nested indexes so a cyclic graph cannot loop.
const maxIndexDepth = 4

// maxManifestSize bounds a manifest or index read into memory.
const maxManifestSize = 4 << 20

// fetcher is one pull's connection to one repository.
type fetcher struct {
	p    *Puller
	pl   *remote.Puller
	repo name.Repository
	// source is the repository as BlobSources spell it.
	source string
	emit   func(progress.Event)
}

// manifestBlob is a fetched manifest or index, checked against its digest.
type manifestBlob struct {
	desc ocispec.Descriptor
	raw  []byte
}

// manifests fetches the target of r and, through indexes, the manifest for
// platform. The chain runs from the target to that manifest. want, if set,
// is the digest the target must have.
func (f *fetcher) manifests(ctx context.Context, r name.Reference, want digest.Digest, platform ocispec.Platform) ([]manifestBlob, error) {
	root, err := f.fetchManifest(ctx, r, ocispec.Descriptor{Digest: want, Size: -1})
	if err != nil {
		return nil, err
	}
	chain := []manifestBlob{root}
	for range maxIndexDepth {
		cur := chain[len(chain)-1]
		switch {
		case images.IsManifest(cur.desc.MediaType):
			return chain, nil
		case images.IsIndex(cur.desc.MediaType):
		default:
			return nil, fmt.Errorf("manifest %s: unsupported media type %q", cur.desc.Digest, cur.desc.MediaType)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(cur.raw, &idx); err != nil {
			return nil, fmt.Errorf("decode index %s: %w", cur.desc.Digest, err)
		}
		next, ok := images.MatchPlatform(idx.Manifests, platform)
		if !ok {
			return nil, fmt.Errorf("index %s has no manifest for platform %s", cur.desc.Digest, images.PlatformString(platform))
		}
		child, err := f.fetchManifest(ctx, f.repo.Digest(next.Digest.String()), next)
		if err != nil {
			return nil, err
		}
		chain = append(chain, child)
	}
	return nil, fmt.Errorf("manifest %s: indexes nested deeper than %d", root.desc.Digest, maxIndexDepth)
}

// fetchManifest gets one manifest or index and checks it against expect's
// digest and size when they are set. The media type is the document's own
// mediaType field, else the one the registry sent.
func (f *fetcher) fetchManifest(ctx context.Context, r name.Reference, expect ocispec.Descriptor) (manifestBlob, error) {
	d, err := f.pl.Get(ctx, r)
	if err != nil {
		return manifestBlob{}, err
	}
	raw := d.Manifest
	if len(raw) > maxManifestSize {
		return manifestBlob{}, fmt.Errorf("manifest %s: %d bytes, more than %d", r, len(raw), maxManifestSize)
	}
	got := digest.FromBytes(raw)
	if expect.Digest != "" && got != expect.Digest {
		return manifestBlob{}, fmt.Errorf("manifest %s: registry sent content with digest %s", expect.Digest, got)
	}
	if expect.Size >= 0 && expect.Digest != "" && int64(len(raw)) != expect.Size {
		return manifestBlob{}, fmt.Errorf("manifest %s: registry sent %d bytes, expected %d", expect.Digest, len(raw), expect.Size)
	}
	mt := images.SniffMediaType(raw)
	if mt == "" {
		mt = string(d.MediaType)
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(raw)), Platform: expect.Platform}
	return manifestBlob{desc: desc, raw: raw}, nil
}

// blobs fetches the config and layers of m that the store lacks, at most
// Jobs at once, and counts them in res.
func (f *fetcher) blobs(ctx context.Context, m manifestBlob, res *Result) error {
	var man ocispec.Manifest
	if err := json.Unmarshal(m.raw, &man); err != nil {
		return fmt.Errorf("decode manifest %s: %w", m.desc.Digest, err)
	}
	if man.Config.Digest == "" {
		return fmt.Errorf("manifest %s has no config", m.desc.Digest)
	}
	all := append([]ocispec.Descriptor{man.Config}, man.Layers...)
	var missing []ocispec.Descriptor
	for _, b := range all {
		if err := b.Digest.Validate(); err != nil {
			return fmt.Errorf("manifest %s: invalid blob digest %q: %w", m.desc.Digest, b.Digest, err)
		}
		if info, err := f.p.content.Info(ctx, b.Digest); err == nil && info.Size == b.Size {
			res.Present++
			continue
		}
		missing = append(missing, b)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.p.opts.Jobs)
	for _, b := range missing {
		g.Go(func() error { return f.fetchBlob(gctx, b) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if s := f.p.opts.Sources; s != nil {
		for _, b := range all {
			s.Add(b.Digest, f.source)
		}
	}
	res.Fetched = len(missing)
	for _, b := range missing {
		res.FetchedBytes += b.Size
	}
	return nil
}

// fetchBlob streams one blob into the content store, which commits it only
// if its digest and size match b.
func (f *fetcher) fetchBlob(ctx context.Context, b ocispec.Descriptor) error {
	l, err := f.pl.Layer(ctx, f.repo.Digest(b.Digest.String()))
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", b.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", b.Digest, err)
	}
	defer rc.Close()
	if err := f.p.content.WriteBlob(ctx, rc, b.Size, b.Digest); err != nil {
		return fmt.Errorf("fetch blob %s: %w", b.Digest, err)
	}
	f.emit(progress.Event{Status: progress.Log, Stream: 1, Data: fmt.Appendf(nil, "%s: %d bytes\n", b.Digest, b.Size)})
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
