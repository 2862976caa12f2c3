package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry/hosts"
)

// The upload protocol of the OCI distribution spec, per blob:
//
//	HEAD /v2/<repo>/blobs/<digest>                     200: skip it
//	POST /v2/<repo>/blobs/uploads/?mount=<d>&from=<r>  201: mounted
//	POST /v2/<repo>/blobs/uploads/                     202 + Location
//	PUT  <Location>&digest=<d>, the whole blob         201
//
// A refused mount (202) opens an upload session, which is used. The blob goes
// up in one PUT straight from the content store's file, so the kernel can
// send it without copying (sendfile) and nothing is compressed or hashed on
// the way; a failed attempt restarts with a new session.

// maxAttempts bounds the tries of one blob or manifest; retryBackoff is the
// wait after the first failure, doubled after each next one up to
// maxBackoff.
const (
	maxAttempts = 5
	maxBackoff  = 5 * time.Second
)

var retryBackoff = 250 * time.Millisecond

// progressInterval is how often an upload in flight reports its bytes.
var progressInterval = 2 * time.Second

// client sends one repository's requests through go-containerregistry's
// transport, which authenticates them: basic auth, or a bearer token with
// the push's scopes.
type client struct {
	http *http.Client
	repo name.Repository
}

// newClient pings repo's registry through ep and authenticates for push and
// pull on repo and pull on each of sources (the repositories blobs are
// mounted from).
func (p *Pusher) newClient(ctx context.Context, ep hosts.Endpoint, repo name.Repository, sources []name.Repository) (*client, error) {
	auth, err := authn.Resolve(ctx, p.pl.opts.Hosts.Keychain(), repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), permanent(err))
	}
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, s := range sources {
		scopes = append(scopes, s.Scope(transport.PullScope))
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, ep.Transport, scopes)
	if err != nil {
		return nil, err
	}
	return &client{http: &http.Client{Transport: tr}, repo: repo}, nil
}

// url is the address of path under the repository's /v2/<name>/.
func (c *client) url(path string) string {
	u := url.URL{Scheme: c.repo.Scheme(), Host: c.repo.RegistryStr(), Path: "/v2/" + c.repo.RepositoryStr() + "/" + path}
	return u.String()
}

// do sends a request whose body, if any, has size bytes, and returns the
// response if its status is one of ok (the body is then the caller's to
// close), else a *transport.Error.
func (c *client) do(ctx context.Context, method, u string, body io.ReadCloser, size int64, header http.Header, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, permanent(err)
	}
	if body != nil {
		req.Body, req.ContentLength = body, size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, ok...); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// location is the absolute URL of resp's Location header.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", permanent(fmt.Errorf("%s %s: %d without a Location header", resp.Request.Method, resp.Request.URL.Redacted(), resp.StatusCode))
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", permanent(fmt.Errorf("%s %s: bad Location %q", resp.Request.Method, resp.Request.URL.Redacted(), loc))
	}
	return u.String(), nil
}

// explainAuth adds the registry's message to a HEAD answered 401 or 403,
// which has no body to carry one, from the answer to GET /v2/.
func (r *repoPusher) explainAuth(ctx context.Context, err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.Request == nil || terr.Request.Method != http.MethodHead ||
		(terr.StatusCode != http.StatusUnauthorized && terr.StatusCode != http.StatusForbidden) {
		return err
	}
	u := url.URL{Scheme: r.repo.Scheme(), Host: r.repo.RegistryStr(), Path: "/v2/"}
	resp, gerr := r.client.do(ctx, http.MethodGet, u.String(), nil, 0, nil, http.StatusOK)
	if gerr == nil {
		resp.Body.Close()
		return err
	}
	var said *transport.Error
	if !errors.As(gerr, &said) || len(said.Errors) == 0 {
		return err
	}
	msgs := make([]string, len(said.Errors))
	for i, d := range said.Errors {
		msgs[i] = d.String()
	}
	return fmt.Errorf("%w (the registry says %s)", err, strings.Join(msgs, "; "))
}

// hasManifest reports whether the repository holds m, by a HEAD of its
// digest. Any failure counts as no: the push then goes blob by blob.
func (r *repoPusher) hasManifest(ctx context.Context, m manifestBlob) bool {
	c := r.client
	header := http.Header{"Accept": {m.desc.MediaType}}
	resp, err := c.do(ctx, http.MethodHead, c.url("manifests/"+m.desc.Digest.String()), nil, 0, header, http.StatusOK)
	if err != nil {
		return false
	}
	resp.Body.Close()
	got := resp.Header.Get("Docker-Content-Digest")
	return got == "" || got == m.desc.Digest.String()
}

// tagIs reports whether the repository's tag names d, by a HEAD.
func (r *repoPusher) tagIs(ctx context.Context, tag string, d digest.Digest) bool {
	c := r.client
	header := http.Header{"Accept": {ocispec.MediaTypeImageManifest + ", " + ocispec.MediaTypeImageIndex + ", application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"}}
	resp, err := c.do(ctx, http.MethodHead, c.url("manifests/"+tag), nil, 0, header, http.StatusOK)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.Header.Get("Docker-Content-Digest") == d.String()
}

// blobOutcome is what became of one blob.
type blobOutcome int

const (
	blobUploaded blobOutcome = iota
	blobSkipped
	blobMounted
)

// pushBlob makes b present in the repository, retrying transient failures,
// and counts and reports what it did.
func (r *repoPusher) pushBlob(ctx context.Context, b ocispec.Descriptor) error {
	start := time.Now()
	var out blobOutcome
	var from string
	err := r.retry(ctx, "push blob "+b.Digest.String(), func() error {
		var err error
		out, from, err = r.tryBlob(ctx, b)
		return err
	})
	if err != nil {
		return err
	}
	switch out {
	case blobSkipped:
		r.skipped.Add(1)
		r.log("%s: already exists", b.Digest)
	case blobMounted:
		r.mounted.Add(1)
		r.log("%s: mounted from %s", b.Digest, from)
	default:
		r.uploaded.Add(1)
		r.uploadedBytes.Add(b.Size)
		r.log("%s: pushed %s in %.1fs", b.Digest, humanBytes(b.Size), time.Since(start).Seconds())
	}
	r.record(b.Digest)
	return nil
}

// tryBlob is one attempt at b: HEAD, mounts, then an upload.
func (r *repoPusher) tryBlob(ctx context.Context, b ocispec.Descriptor) (out blobOutcome, from string, err error) {
	c := r.client
	resp, err := c.do(ctx, http.MethodHead, c.url("blobs/"+b.Digest.String()), nil, 0, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return blobSkipped, "", nil
	}
	var loc string
	for _, src := range r.mountFrom[b.Digest] {
		q := url.Values{"mount": {b.Digest.String()}, "from": {src}}
		resp, err := c.do(ctx, http.MethodPost, c.url("blobs/uploads/")+"?"+q.Encode(), nil, 0, nil, http.StatusCreated, http.StatusAccepted)
		var terr *transport.Error
		if errors.As(err, &terr) {
			continue // some registries answer a mount they refuse with an error: upload instead
		} else if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return blobMounted, r.repo.RegistryStr() + "/" + src, nil
		}
		// Refused, and a session opened instead: used unless another
		// source mounts.
		if loc, err = location(resp); err != nil {
			return 0, "", err
		}
	}
	if loc == "" {
		resp, err := c.do(ctx, http.MethodPost, c.url("blobs/uploads/"), nil, 0, nil, http.StatusAccepted)
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		if loc, err = location(resp); err != nil {
			return 0, "", err
		}
	}
	if _, err := r.p.pl.content.Info(ctx, b.Digest); errors.Is(err, errdefs.ErrNotFound) {
		if err := r.fetch.fetch(ctx, b); err != nil {
			return 0, "", err
		}
	}
	r.log("%s: uploading %s", b.Digest, humanBytes(b.Size))
	return blobUploaded, "", r.upload(ctx, b, loc)
}

// upload sends the stored blob b to the session at loc in one PUT.
func (r *repoPusher) upload(ctx context.Context, b ocispec.Descriptor, loc string) error {
	u, err := url.Parse(loc)
	if err != nil {
		return permanent(err)
	}
	q := u.Query()
	q.Set("digest", b.Digest.String())
	u.RawQuery = q.Encode()

	cs := r.p.pl.content
	open := func() (*os.File, error) {
		f, err := cs.Open(ctx, b.Digest)
		if err != nil {
			return nil, permanent(err)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return err
	}
	// The body is the *os.File itself, so that net/http hands it to the
	// kernel; progress reads the file's offset. A redirect reopens it.
	var cur atomic.Pointer[os.File]
	cur.Store(f)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), nil)
	if err != nil {
		f.Close()
		return permanent(err)
	}
	req.Body, req.ContentLength = f, b.Size
	req.GetBody = func() (io.ReadCloser, error) {
		f, err := open()
		if err != nil {
			return nil, err
		}
		cur.Store(f)
		return f, nil
	}
	req.Header.Set("Content-Type", "application/octet-stream")

	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if off, err := cur.Load().Seek(0, io.SeekCurrent); err == nil && off != last {
					last = off
					r.log("%s: %s / %s", b.Digest, humanBytes(off), humanBytes(b.Size))
				}
			}
		}
	}()
	resp, err := r.client.http.Do(req)
	close(stop)
	<-ticked
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusCreated); err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != b.Digest.String() {
		return permanent(fmt.Errorf("registry stored blob %s as %s", b.Digest, got))
	}
	return nil
}

// putManifest writes m under ref (a tag or m's digest), retrying transient
// failures. display names the tag in progress, "" for a child manifest.
func (r *repoPusher) putManifest(ctx context.Context, m manifestBlob, ref, display string) error {
	c := r.client
	err := r.retry(ctx, "push manifest "+m.desc.Digest.String(), func() error {
		header := http.Header{"Content-Type": {m.desc.MediaType}}
		resp, err := c.do(ctx, http.MethodPut, c.url("manifests/"+ref), io.NopCloser(bytes.NewReader(m.raw)), int64(len(m.raw)), header, http.StatusOK, http.StatusCreated)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != m.desc.Digest.String() {
			return permanent(fmt.Errorf("registry stored manifest %s as %s", m.desc.Digest, got))
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.manifests.Add(1)
	if display != "" {
		r.log("manifest %s: pushed as %s", m.desc.Digest, display)
	} else {
		r.log("manifest %s (%s): pushed", m.desc.Digest, platformName(m.desc.Platform))
	}
	return nil
}

// retry runs op until it succeeds, fails for good, or maxAttempts ran, with
// backoff between attempts. The error names what failed and the attempts.
func (r *repoPusher) retry(ctx context.Context, what string, op func() error) error {
	wait := retryBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if !transient(ctx, err) || attempt == maxAttempts {
			if attempt > 1 {
				return fmt.Errorf("%s: %d attempts failed, the last%s: %w", what, attempt, withStatus(err), err)
			}
			return fmt.Errorf("%s%s: %w", what, withStatus(err), err)
		}
		r.retries.Add(1)
		r.log("%s: attempt %d failed, retrying in %v: %v", what, attempt, wait, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (after: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}

// withStatus is " with status 503 Service Unavailable" for an error answer
// of the registry, "" for other errors: the registry's message may not say.
func withStatus(err error) string {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return ""
	}
	return fmt.Sprintf(" with status %d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
}

// permanentError is a failure that trying again cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// transient reports whether err may pass if tried again: a 5xx (but 501),
// 408 or 429 answer, or a connection broken, refused or timed out. Failures
// of the content store, TLS verification and name resolution are final.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.As(err, new(permanentError)) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch s := terr.StatusCode; {
		case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
			return true
		case s >= 500 && s != http.StatusNotImplemented:
			return true
		}
		return false
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		header   tls.RecordHeaderError
		dns      *net.DNSError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &header):
		return false
	case errors.As(err, &dns) && dns.IsNotFound:
		return false
	}
	return true
}
