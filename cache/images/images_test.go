package images

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/internal/errdefs"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "busybox", want: "docker.io/library/busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "x/y:1", want: "docker.io/x/y:1"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/library/busybox:1", want: "docker.io/library/busybox:1"},
		{in: "localhost:5000/a", want: "localhost:5000/a:latest"},
		{in: "localhost/a:v1", want: "localhost/a:v1"},
		{in: "127.0.0.1:5000/a/b/c:t", want: "127.0.0.1:5000/a/b/c:t"},
		{in: "ghcr.io/o/r", want: "ghcr.io/o/r:latest"},
		{in: "alpine@sha256:" + hexA, want: "docker.io/library/alpine@sha256:" + hexA},
		{in: "alpine:3@sha256:" + hexA, want: "docker.io/library/alpine:3@sha256:" + hexA},
		{in: "a_b-c__d/e.f", want: "docker.io/a_b-c__d/e.f:latest"},
		{in: "a.b/c", want: "a.b/c:latest"},
		{in: "", err: "empty"},
		{in: "Busybox", err: "must be lowercase"},
		{in: "busybox:", err: "invalid tag"},
		{in: "busybox:-x", err: "invalid tag"},
		{in: "a//b", err: "invalid repository path component"},
		{in: "-a", err: "invalid repository path component"},
		{in: "a@sha256:short", err: "digest"},
		{in: hexA, err: "64-character hexadecimal"},
		{in: "bad_domain.com:x/a", err: "invalid domain"},
		{in: "a/" + strings.Repeat("b", 260), err: "longer than"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Normalize(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFamiliar(t *testing.T) {
	tests := map[string]string{
		"docker.io/library/busybox:latest":        "busybox:latest",
		"docker.io/x/y:1":                         "x/y:1",
		"docker.io/library/a/b:1":                 "library/a/b:1",
		"localhost:5000/a:latest":                 "localhost:5000/a:latest",
		"docker.io/library/alpine@sha256:" + hexA: "alpine@sha256:" + hexA,
	}
	for in, want := range tests {
		if got := Familiar(in); got != want {
			t.Errorf("Familiar(%q) = %q, want %q", in, got, want)
		}
		if n, err := Normalize(Familiar(in)); err != nil || n != in {
			t.Errorf("Normalize(Familiar(%q)) = %q, %v", in, n, err)
		}
	}
	if got := Tag("docker.io/library/busybox:1"); got != "1" {
		t.Errorf("Tag = %q", got)
	}
	if got := Tag("localhost:5000/a@sha256:" + hexA); got != "" {
		t.Errorf("Tag of digest-only name = %q", got)
	}
}

func newImageStore(t *testing.T) *Store {
	t.Helper()
	db, err := metadata.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(db)
}

func TestStorePutGetListDelete(t *testing.T) {
	ctx := context.Background()
	s := newImageStore(t)
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }
	d1 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m1"), Size: 2}
	d2 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m2"), Size: 2}

	if _, err := s.Get(ctx, "busybox"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get on empty store = %v", err)
	}
	for _, n := range []string{"zz", "busybox", "localhost:5000/a:1"} {
		if err := s.Put(ctx, Image{Name: n, Target: d1}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(ctx, "docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	want := Image{Name: "docker.io/library/busybox:latest", Target: d1, Created: clock, Updated: clock}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get (-want +got):\n%s", diff)
	}
	// Retag keeps Created and moves Updated.
	later := clock.Add(time.Hour)
	s.now = func() time.Time { return later }
	if err := s.Put(ctx, Image{Name: "busybox:latest", Target: d2}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "busybox")
	if got.Target.Digest != d2.Digest || !got.Created.Equal(clock) || !got.Updated.Equal(later) {
		t.Fatalf("after retag = %+v", got)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	wantNames := []string{"docker.io/library/busybox:latest", "docker.io/library/zz:latest", "localhost:5000/a:1"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("List names (-want +got):\n%s", diff)
	}
	if err := s.Delete(ctx, "zz"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "zz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
	if err := s.Put(ctx, Image{Name: "Bad", Target: d1}); err == nil {
		t.Fatal("Put with invalid name succeeded")
	}
	if err := s.Put(ctx, Image{Name: "ok", Target: ocispec.Descriptor{}}); err == nil {
		t.Fatal("Put with empty target succeeded")
	}
}

func TestStoreConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	s := newImageStore(t)
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := s.Put(ctx, Image{Name: "img:" + string(rune('a'+i)), Target: d}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := s.List(ctx)
	if err != nil || len(list) != 8 {
		t.Fatalf("List = %d images, %v", len(list), err)
	}
}

// putJSON stores v as a blob of mediaType.
func putJSON(t *testing.T, cs *content.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cs.Put(context.Background(), mediaType, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// platformImage stores a config and manifest for one platform.
func platformImage(t *testing.T, cs *content.Store, p ocispec.Platform) ocispec.Descriptor {
	t.Helper()
	cfg := putJSON(t, cs, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: p,
		RootFS:   ocispec.RootFS{Type: "layers"},
		Config:   ocispec.ImageConfig{Env: []string{"P=" + PlatformString(p)}},
	})
	m := putJSON(t, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    []ocispec.Descriptor{},
	})
	m.Platform = &p
	return m
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	platforms := []ocispec.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm", Variant: "v6"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
	var ms []ocispec.Descriptor
	attest := putJSON(t, cs, ocispec.MediaTypeImageManifest, map[string]string{"x": "y"})
	attest.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	ms = append(ms, attest)
	for _, p := range platforms {
		ms = append(ms, platformImage(t, cs, p))
	}
	idx := putJSON(t, cs, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ms,
	})
	idx.Annotations = map[string]string{"io.containerd.image.name": "docker.io/library/x:1"}
	tests := []struct {
		want ocispec.Platform
		env  string
		err  string
	}{
		{want: ocispec.Platform{OS: "linux", Architecture: "amd64"}, env: "P=linux/amd64"},
		{want: ocispec.Platform{Architecture: "amd64"}, env: "P=linux/amd64"},
		{want: ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, env: "P=linux/arm/v7"},
		{want: ocispec.Platform{OS: "linux", Architecture: "arm"}, env: "P=linux/arm/v6"},
		{want: ocispec.Platform{OS: "linux", Architecture: "arm64"}, env: "P=linux/arm64/v8"},
		{want: ocispec.Platform{OS: "linux", Architecture: "s390x"}, err: "no manifest for platform linux/s390x"},
		{want: ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, err: "no manifest for platform linux/arm/v5"},
	}
	for _, tt := range tests {
		r, err := Resolve(ctx, cs, idx, tt.want)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Resolve(%v) err = %v, want %q", tt.want, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%v): %v", tt.want, err)
			continue
		}
		if got := r.Config.Config.Env; len(got) != 1 || got[0] != tt.env {
			t.Errorf("Resolve(%v) env = %v, want %s", tt.want, got, tt.env)
		}
		if r.Name != "docker.io/library/x:1" || digest.FromBytes(r.ConfigBytes) != r.Manifest.Config.Digest {
			t.Errorf("Resolve(%v) = name %q, config bytes mismatch", tt.want, r.Name)
		}
	}
	// A manifest without media type on its descriptor is sniffed.
	m := ms[1]
	m.MediaType = ""
	r, err := Resolve(ctx, cs, m, ocispec.Platform{OS: "windows"})
	if err != nil || r.ManifestDesc.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("Resolve bare manifest = %+v, %v", r, err)
	}
	// Missing blobs say what is missing.
	gone := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 4}
	if _, err := Resolve(ctx, cs, gone, ocispec.Platform{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Resolve missing = %v", err)
	}
}
