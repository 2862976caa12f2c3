package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry/hosts"
)

// The reads below serve callers that fetch what they need themselves (a
// build cache import): no tag is written, no platform resolved. Each goes
// to the name's mirrors first, then its registry, as Pull does.

// FetchManifest reads the manifest or index ref names, bounded and checked
// against the digest the registry gives; nothing is stored.
func (p *Puller) FetchManifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	var m manifestBlob
	err := p.withFetcher(ctx, ref, func(f *fetcher, r name.Reference) error {
		var want digest.Digest
		if d, ok := r.(name.Digest); ok {
			want = digest.Digest(d.DigestStr())
		}
		var err error
		m, err = f.fetchManifest(ctx, r, ocispec.Descriptor{Digest: want, Size: -1})
		return err
	})
	return m.desc, m.raw, err
}

// FetchBlob reads a blob of ref's repository whole: at most limit bytes,
// checked against d's digest and size.
func (p *Puller) FetchBlob(ctx context.Context, ref string, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if d.Size > limit || d.Size < 0 {
		return nil, fmt.Errorf("blob %s: %d bytes, the limit is %d", d.Digest, d.Size, limit)
	}
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	var out []byte
	err := p.withFetcher(ctx, ref, func(f *fetcher, r name.Reference) error {
		l, err := f.pl.Layer(ctx, f.repo.Digest(d.Digest.String()))
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		var buf bytes.Buffer
		body := &sizeLimit{r: rc, left: d.Size, err: fmt.Errorf("registry sent more than the %d bytes the manifest gives", d.Size)}
		if _, err := io.Copy(&buf, body); err != nil {
			return fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		if int64(buf.Len()) != d.Size || d.Digest.Algorithm().FromBytes(buf.Bytes()) != d.Digest {
			return fmt.Errorf("blob %s: the registry sent other bytes", d.Digest)
		}
		out = buf.Bytes()
		return nil
	})
	return out, err
}

// FetchBlobs stores blobs of ref's repository into the content store, at
// most Jobs at once, each verified as it streams in; blobs the store has
// are skipped.
func (p *Puller) FetchBlobs(ctx context.Context, ref string, blobs []ocispec.Descriptor) error {
	return p.FetchBlobsEach(ctx, ref, blobs, nil)
}

// FetchBlobsEach is FetchBlobs that calls each (when set) as each blob is
// in the store, the ones it had first: a caller unpacks layer i while the
// later ones still download. Fetches start in the order of blobs.
func (p *Puller) FetchBlobsEach(ctx context.Context, ref string, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error {
	if each == nil {
		each = func(ocispec.Descriptor) {}
	}
	var missing []ocispec.Descriptor
	for _, b := range blobs {
		if _, err := p.content.Info(ctx, b.Digest); err != nil {
			missing = append(missing, b)
		} else {
			each(b)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return p.withFetcher(ctx, ref, func(f *fetcher, _ name.Reference) error {
		eg, gctx := errgroup.WithContext(ctx)
		eg.SetLimit(p.opts.Jobs)
		for _, b := range missing {
			eg.Go(func() error {
				if err := f.fetchBlob(gctx, b); err != nil {
					return err
				}
				if p.opts.Sources != nil {
					p.opts.Sources.Add(b.Digest, f.source)
				}
				each(b)
				return nil
			})
		}
		return eg.Wait()
	})
}

// withFetcher calls fn with a fetcher of ref's repository on each of its
// pull endpoints in turn until one succeeds.
func (p *Puller) withFetcher(ctx context.Context, ref string, fn func(f *fetcher, r name.Reference) error) error {
	normalized, err := images.Normalize(ref)
	if err != nil {
		return err
	}
	if p.hostsErr != nil {
		return fmt.Errorf("%s: %w", images.Familiar(normalized), p.hostsErr)
	}
	r, err := parseName(normalized)
	if err != nil {
		return err
	}
	host := registryHost(normalized)
	quiet := func(progress.Event) {}
	_, err = p.eachEndpoint(ctx, host, quiet, func(ep hosts.Endpoint) error {
		f, epRef, err := p.newFetcher(ctx, ep, r, normalized, quiet)
		if err != nil {
			return err
		}
		return fn(f, epRef)
	})
	if err != nil {
		return fmt.Errorf("%s from registry %s: %w", images.Familiar(normalized), host, err)
	}
	return nil
}
