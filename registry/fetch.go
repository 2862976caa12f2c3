package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

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

// maxConfigSize bounds an image config: a manifest naming a larger one is
// refused before anything is fetched.
const maxConfigSize = 8 << 20

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
		return manifestBlob{}, fmt.Errorf("manifest %s: %d bytes, more than the limit of %d", r, len(raw), maxManifestSize)
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

// blobs fetches the config and (with layers) the layers of m that the
// store lacks, at most Jobs at once, and counts them in res. Sources
// learns the repository of every blob, fetched or not.
func (f *fetcher) blobs(ctx context.Context, m manifestBlob, layers bool, res *Result) error {
	var man ocispec.Manifest
	if err := json.Unmarshal(m.raw, &man); err != nil {
		return fmt.Errorf("decode manifest %s: %w", m.desc.Digest, err)
	}
	if man.Config.Digest == "" {
		return fmt.Errorf("manifest %s has no config", m.desc.Digest)
	}
	if man.Config.Size > maxConfigSize {
		return fmt.Errorf("manifest %s: config %s has %d bytes, more than the limit of %d", m.desc.Digest, man.Config.Digest, man.Config.Size, maxConfigSize)
	}
	all := append([]ocispec.Descriptor{man.Config}, man.Layers...)
	var missing []ocispec.Descriptor
	for i, b := range all {
		if err := b.Digest.Validate(); err != nil {
			return fmt.Errorf("manifest %s: invalid blob digest %q: %w", m.desc.Digest, b.Digest, err)
		}
		if b.Size < 0 {
			return fmt.Errorf("manifest %s: blob %s has a negative size %d", m.desc.Digest, b.Digest, b.Size)
		}
		if info, err := f.p.content.Info(ctx, b.Digest); err == nil && info.Size == b.Size {
			res.Present++
			continue
		}
		if i > 0 && !layers {
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
// if its digest and size match b. A body longer than b.Size is cut at the
// first byte too many: an endless one fills no disk.
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
	body := &sizeLimit{r: rc, left: b.Size, err: fmt.Errorf("registry sent more than the %d bytes the manifest gives", b.Size)}
	if err := f.p.content.WriteBlob(ctx, body, b.Size, b.Digest); err != nil {
		return fmt.Errorf("fetch blob %s: %w", b.Digest, err)
	}
	f.emit(progress.Event{Status: progress.Log, Stream: 1, Data: fmt.Appendf(nil, "%s: %d bytes\n", b.Digest, b.Size)})
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// sizeLimit reads r up to left bytes and fails with err once r has more.
type sizeLimit struct {
	r    io.Reader
	left int64
	err  error
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more is one too many; EOF is the end expected.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, l.err
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// manifestGuard carries a pull's requests and bounds and checks the
// manifests they fetch as they arrive, below go-containerregistry, which
// reads a manifest of up to 100 MiB into memory and takes a tag's content
// for what it is: an answer declaring more than maxManifestSize bytes is
// refused unread, a body longer than that is cut at the first byte too
// many, and one whose bytes do not have the digest the registry announces
// (Docker-Content-Digest) fails at its end.
type manifestGuard struct{ inner http.RoundTripper }

func (g manifestGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.inner.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	ref, ok := manifestRef(req)
	if !ok {
		return resp, nil
	}
	what := "manifest " + ref
	announced, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if derr == nil && announced.String() != ref {
		what += " (" + announced.String() + ")"
	}
	if resp.ContentLength > maxManifestSize {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", what, resp.ContentLength, maxManifestSize)
	}
	body := &manifestBody{
		rc:    resp.Body,
		limit: sizeLimit{r: resp.Body, left: maxManifestSize, err: fmt.Errorf("%s: more than the limit of %d bytes", what, maxManifestSize)},
		ref:   ref,
	}
	// A signed schema 1 manifest's digest is that of its payload, not of
	// its bytes; it is refused later for its media type anyway.
	if derr == nil && announced.Algorithm().Available() && !strings.HasPrefix(resp.Header.Get("Content-Type"), schema1Signed) {
		body.want, body.digester = announced, announced.Algorithm().Digester()
	}
	resp.Body = body
	return resp, nil
}

// manifestRef returns the tag or digest of a GET of
// /v2/<name>/manifests/<ref>, or of the GET a redirect chain started with.
func manifestRef(req *http.Request) (string, bool) {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	p := req.URL.Path
	i := strings.LastIndex(p, "/manifests/")
	if !strings.HasPrefix(p, "/v2/") || i <= len("/v2/") {
		return "", false
	}
	ref := p[i+len("/manifests/"):]
	if ref == "" || strings.Contains(ref, "/") {
		return "", false
	}
	return ref, true
}

// schema1Signed is the media type of signed schema 1 manifests.
const schema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

// manifestBody is a manifest answer's body, bounded and hashed.
type manifestBody struct {
	rc       io.Closer
	limit    sizeLimit
	ref      string
	want     digest.Digest
	digester digest.Digester
}

func (b *manifestBody) Read(p []byte) (int, error) {
	n, err := b.limit.Read(p)
	if b.digester != nil {
		b.digester.Hash().Write(p[:n])
		if err == io.EOF {
			if got := b.digester.Digest(); got != b.want {
				return n, fmt.Errorf("manifest %s: the registry announced digest %s, the content has digest %s", b.ref, b.want, got)
			}
		}
	}
	return n, err
}

func (b *manifestBody) Close() error { return b.rc.Close() }
