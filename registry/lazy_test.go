package registry_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/registrytest"
)

// Resolve stores the manifest and config, not the layers, tags nothing,
// and tells Sources where the layers are; FetchBlobsEach then brings the
// layers, reporting each.
func TestResolveThenFetchLayers(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	img := randomImage(t, 3)
	reg.Push(t, "app/x:1", img)
	s := newStore(t)
	src := &registry.MemorySources{}
	p := s.puller(registry.Options{Sources: src})
	res, err := p.Resolve(ctx, reg.Ref("app/x:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.is.Get(ctx, res.Image.Name); err == nil {
		t.Error("Resolve tagged the image")
	}
	blobs := ociBlobs(t, img)
	if _, err := s.cs.Info(ctx, res.Manifest.Digest); err != nil {
		t.Errorf("manifest not stored: %v", err)
	}
	if _, err := s.cs.Info(ctx, blobs[0].Digest); err != nil {
		t.Errorf("config not stored: %v", err)
	}
	var layers []ocispec.Descriptor
	for _, b := range blobs[1:] {
		if _, err := s.cs.Info(ctx, b.Digest); err == nil {
			t.Errorf("layer %s fetched by Resolve", b.Digest)
		}
		if got := src.Sources(b.Digest); len(got) != 1 || got[0] != reg.Host+"/app/x" {
			t.Errorf("sources of %s = %v", b.Digest, got)
		}
		layers = append(layers, b)
	}
	var mu sync.Mutex
	seen := map[digest.Digest]int{}
	err = p.FetchBlobsEach(ctx, res.Image.Name, layers, func(d ocispec.Descriptor) {
		mu.Lock()
		seen[d.Digest]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range layers {
		if seen[b.Digest] != 1 {
			t.Errorf("each called %d times for %s", seen[b.Digest], b.Digest)
		}
	}
	s.checkBlobs(t, img)
}

// A push of an image whose layers the content store lacks fetches, through
// PushOptions.Fetch, only those the repositories neither have nor mount,
// once each however many repositories take them.
func TestPushFetchesMissingBlobsOnce(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	s := newStore(t)
	img := randomImage(t, 2)
	desc := registrytest.StoreImage(t, s.cs, img)
	blobs := ociBlobs(t, img)
	// The registry holds the image in base; the push knows that of the
	// first layer only (it mounts it), and must upload the second.
	reg.Push(t, "base:1", img)
	kept := map[digest.Digest][]byte{}
	for _, b := range blobs[1:] {
		data, err := s.cs.ReadBlob(ctx, b.Digest)
		if err != nil {
			t.Fatal(err)
		}
		kept[b.Digest] = data
		if err := s.cs.Delete(ctx, b.Digest); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	fetch := func(ctx context.Context, b ocispec.Descriptor) error {
		calls.Add(1)
		return s.cs.WriteBlob(ctx, strings.NewReader(string(kept[b.Digest])), b.Size, b.Digest)
	}
	sources := &registry.MemorySources{}
	sources.Add(blobs[1].Digest, reg.Host+"/base")
	res, err := s.pusher(registry.Options{Sources: sources}).PushWith(ctx, desc, []string{reg.Ref("app:1"), reg.Ref("other:1")}, registry.PushOptions{Fetch: fetch})
	if err != nil {
		t.Fatal(err)
	}
	// blobs[1] mounts from base; blobs[2] is fetched once, uploaded to the
	// first repository and mounted into the second.
	if got := calls.Load(); got != 1 {
		t.Errorf("Fetch called %d times, want 1", got)
	}
	if res.Mounted < 2 {
		t.Errorf("result %+v: want the known layer mounted", res)
	}
	for d, data := range kept { // for checkRemote's comparison
		if err := s.cs.WriteBlob(ctx, strings.NewReader(string(data)), int64(len(data)), d); err != nil {
			t.Fatal(err)
		}
	}
	checkRemote(t, s.cs, reg.Ref("app:1"), desc.Digest)
	checkRemote(t, s.cs, reg.Ref("other:1"), desc.Digest)
}

// ociBlobs is blobsOf as OCI descriptors: config first, then the layers.
func ociBlobs(t testing.TB, img v1.Image) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, b := range blobsOf(t, img) {
		out = append(out, ocispec.Descriptor{MediaType: string(b.MediaType), Digest: digest.Digest(b.Digest.String()), Size: b.Size})
	}
	return out
}
