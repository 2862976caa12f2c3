package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// stored lists the blobs in the content store.
func (s *store) stored(t *testing.T) []digest.Digest {
	t.Helper()
	var ds []digest.Digest
	err := s.cs.Walk(context.Background(), func(i content.Info) error {
		ds = append(ds, i.Digest)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// checkFailedPull asserts that a failed pull of name tagged nothing and
// left no ingest behind, and that none of bad was stored.
func (s *store) checkFailedPull(t *testing.T, name string, bad ...digest.Digest) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.is.Get(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("failed pull tagged %s: %v", name, err)
	}
	for _, d := range bad {
		if _, err := s.cs.Info(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s was stored: %v", d, err)
		}
	}
	if ingest, _ := os.ReadDir(filepath.Join(s.cs.Root(), "ingest")); len(ingest) != 0 {
		t.Errorf("ingest debris left: %v", ingest)
	}
}

// ociManifest is an OCI image manifest naming config and layers, with
// annotations.
func ociManifest(t *testing.T, config ocispec.Descriptor, annotations map[string]string, layers ...ocispec.Descriptor) []byte {
	t.Helper()
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	config.MediaType = ocispec.MediaTypeImageConfig
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers, Annotations: annotations}
	m.SchemaVersion = 2
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPullRefusesManifestOverLimit(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	raw := ociManifest(t, ocispec.Descriptor{Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		map[string]string{"padding": strings.Repeat("x", 4<<20)})
	d := reg.PushManifest(t, "big:1", ocispec.MediaTypeImageManifest, raw)
	s := newStore(t)
	for _, ref := range []string{reg.Ref("big:1"), reg.Ref("big@" + d.String())} {
		_, err := s.puller(registry.Options{}).Pull(ctx, ref, linuxAMD64)
		if err == nil || !strings.Contains(err.Error(), d.String()) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes, more than the limit of 4194304", len(raw))) {
			t.Fatalf("pull of a manifest of %d bytes by %s = %v, want an error naming %s and the limit", len(raw), ref, err, d)
		}
		t.Logf("%s: %v", ref, err)
		s.checkFailedPull(t, ref)
	}
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

func TestPullStopsEndlessManifest(t *testing.T) {
	reg := registrytest.Start(t, registrytest.EndlessManifests())
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app:1"), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "manifest 1: more than the limit of 4194304 bytes") {
		t.Fatalf("pull of an endless manifest = %v, want the limit", err)
	}
	t.Logf("endless manifest: %v", err)
	s.checkFailedPull(t, reg.Ref("app:1"))
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

func TestPullRefusesConfigOverLimit(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	cfg := digest.FromString("a config of 9 MiB")
	raw := ociManifest(t, ocispec.Descriptor{Digest: cfg, Size: 9 << 20}, nil)
	reg.PushManifest(t, "app:1", ocispec.MediaTypeImageManifest, raw)
	s := newStore(t)
	_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app:1"), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "config "+cfg.String()+" has 9437184 bytes, more than the limit of 8388608") {
		t.Fatalf("pull of a 9 MiB config = %v, want an error naming %s and the limit", err, cfg)
	}
	t.Logf("9 MiB config: %v", err)
	if n := rec.Count(func(r registrytest.Request) bool { return strings.Contains(r.Path, "/blobs/") }); n != 0 {
		t.Errorf("%d blob requests for a config over the limit", n)
	}
	s.checkFailedPull(t, reg.Ref("app:1"), cfg)
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

// TestPullChecksAnnouncedManifestDigest: a manifest fetched by tag must
// have the digest the registry announces for it.
func TestPullChecksAnnouncedManifestDigest(t *testing.T) {
	ctx := context.Background()
	lie := digest.FromString("other content")
	reg := registrytest.Start(t, registrytest.ManifestDigest(lie.String()))
	d := reg.Push(t, "app:1", randomImage(t, 1))
	s := newStore(t)
	_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app:1"), linuxAMD64)
	want := "manifest 1: the registry announced digest " + lie.String() + ", the content has digest " + d.String()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("pull of a manifest under a wrong digest = %v, want %q", err, want)
	}
	t.Logf("wrong digest: %v", err)
	s.checkFailedPull(t, reg.Ref("app:1"), digest.Digest(d.String()))
}

// TestPullRefusesBadBlobs: a blob whose bytes have another digest, and one
// with more bytes than its descriptor gives, sent without end; neither is
// stored, and the endless one does not fill the disk.
func TestPullRefusesBadBlobs(t *testing.T) {
	img := randomImage(t, 2)
	layers, _ := img.Layers()
	bad, _ := layers[1].Digest()
	size, _ := layers[1].Size()
	for _, tt := range []struct {
		name string
		wrap registrytest.Wrap
		want string
	}{
		{"corrupt", registrytest.CorruptBlob(bad), "fetch blob " + bad.String()},
		{"endless", registrytest.EndlessBlob(bad), fmt.Sprintf("fetch blob %s: write content %s: registry sent more than the %d bytes the manifest gives", bad, bad, size)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := registrytest.Start(t, tt.wrap)
			reg.Push(t, "app:1", img)
			s := newStore(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app:1"), linuxAMD64)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("pull = %v, want %q", err, tt.want)
			}
			t.Logf("%s blob: %v", tt.name, err)
			s.checkFailedPull(t, reg.Ref("app:1"), digest.Digest(bad.String()))
		})
	}
}

// authSeen records, per registry, whether blob GETs came with an
// Authorization header.
type authSeen struct {
	mu          sync.Mutex
	with, total int
}

func (a *authSeen) wrap() registrytest.Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				a.mu.Lock()
				a.total++
				if r.Header.Get("Authorization") != "" {
					a.with++
				}
				a.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (a *authSeen) counts() (with, total int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.with, a.total
}

// TestPullRedirectDropsAuthorization: registry A, which demands
// credentials, redirects blob downloads to server B on another port; B
// must not see A's Authorization header.
func TestPullRedirectDropsAuthorization(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 2)
	seenB := &authSeen{}
	b := registrytest.Start(t, seenB.wrap())
	b.Push(t, "private:1", img)
	seenA := &authSeen{}
	a := registrytest.Start(t, registrytest.RedirectBlobs("http://"+b.Host), seenA.wrap(), registrytest.BasicAuth("alice", "s3cret"))
	d := a.Push(t, "private:1", img)
	registrytest.DockerConfig(t, a.Host, "alice", "s3cret")
	s := newStore(t)
	res, err := s.puller(registry.Options{}).Pull(ctx, a.Ref("private:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Target.Digest.String() != d.String() || res.Fetched != 3 {
		t.Fatalf("pull = %+v, want %s with 3 blobs", res, d)
	}
	s.checkBlobs(t, img)
	if with, total := seenA.counts(); with != 3 || total != 3 {
		t.Errorf("A saw %d blob GETs, %d with Authorization; want 3 and 3", total, with)
	}
	if with, total := seenB.counts(); with != 0 || total != 3 {
		t.Errorf("B saw %d blob GETs, %d with Authorization; want 3 and none", total, with)
	}
}

// failManifests answers 503 to the first times manifest GETs (all of them
// when times is negative), counting them.
func failManifests(times int, n *atomic.Int64) registrytest.Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
				if k := n.Add(1); times < 0 || k <= int64(times) {
					http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"registrytest: injected failure"}]}`, http.StatusServiceUnavailable)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestPullRetriesAreBounded: the Resolver's retry policy applies to pulls.
func TestPullRetriesAreBounded(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 1)
	var twice, always atomic.Int64
	flaky := registrytest.Start(t, failManifests(2, &twice))
	flaky.Push(t, "app:1", img)
	down := registrytest.Start(t, failManifests(-1, &always))
	down.Push(t, "app:1", img)
	s := newStore(t)
	p := s.puller(registry.Options{Hosts: testHosts(hosts.Options{Retry: hosts.Retry{Attempts: 3}})})
	if _, err := p.Pull(ctx, flaky.Ref("app:1"), linuxAMD64); err != nil {
		t.Fatalf("pull with two 503s before success: %v", err)
	}
	if n := twice.Load(); n != 3 {
		t.Errorf("%d manifest GETs, want 3", n)
	}
	_, err := p.Pull(ctx, down.Ref("app:1"), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("pull from a registry always 503 = %v", err)
	}
	if n := always.Load(); n != 3 {
		t.Errorf("%d manifest GETs, want 3 attempts", n)
	}
}
