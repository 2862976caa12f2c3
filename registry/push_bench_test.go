package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// benchLayerSize is the size of the random file in the benchmark's layer.
const benchLayerSize = 64 << 20

// storeBigImage puts into cs an OCI image of one uncompressed layer holding
// size random bytes, and returns the manifest's descriptor and the layer's
// size.
func storeBigImage(b *testing.B, cs *content.Store, size int) (ocispec.Descriptor, int64) {
	b.Helper()
	ctx := context.Background()
	data := make([]byte, size)
	rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "random.bin", Mode: 0o644, Size: int64(size)})
	tw.Write(data)
	tw.Close()
	layer, err := cs.Put(ctx, ocispec.MediaTypeImageLayer, buf.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	config, err := cs.Put(ctx, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	})
	desc, err := cs.Put(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		b.Fatal(err)
	}
	return desc, layer.Size
}

// BenchmarkPush pushes an image of one 64 MiB layer: "first" to a new
// repository each time (the layer is uploaded), "repush" to the same one
// (every blob is skipped after a HEAD). MB/s counts the layer's bytes.
// The registries: the in-process one (which hashes and keeps every blob in
// memory), Debian's distribution (hashes and writes to disk), and a sink
// that discards what it gets: the pusher's own ceiling.
func BenchmarkPush(b *testing.B) {
	ctx := context.Background()
	cs, err := content.Open(filepath.Join(b.TempDir(), "content"))
	if err != nil {
		b.Fatal(err)
	}
	desc, size := storeBigImage(b, cs, benchLayerSize)
	p := registry.NewPusher(cs, registry.Options{Hosts: testHosts(hosts.Options{})})

	registries := []struct {
		name  string
		start func(testing.TB) string
	}{
		{"inprocess", func(tb testing.TB) string { return registrytest.Start(tb).Host }},
		{"distribution", func(tb testing.TB) string {
			return registrytest.StartDistribution(tb, registrytest.DistributionOptions{}).Host
		}},
		{"sink", startSink},
	}
	for _, reg := range registries {
		b.Run(reg.name, func(b *testing.B) {
			host := reg.start(b)
			repos := 0 // a new repository for every push, across runs
			b.Run("first", func(b *testing.B) {
				b.SetBytes(size)
				for i := range b.N {
					repos++
					res, err := p.Push(ctx, desc, []string{fmt.Sprintf("%s/bench/first%d:1", host, repos)})
					if err != nil {
						b.Fatal(err)
					}
					if res.UploadedBytes < size {
						b.Fatalf("push %d uploaded %d bytes", i, res.UploadedBytes)
					}
				}
			})
			b.Run("repush", func(b *testing.B) {
				ref := host + "/bench/repush:1"
				if _, err := p.Push(ctx, desc, []string{ref}); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				b.ResetTimer()
				for range b.N {
					res, err := p.Push(ctx, desc, []string{ref})
					if err != nil {
						b.Fatal(err)
					}
					if res.UploadedBytes != 0 {
						b.Fatalf("re-push uploaded %d bytes", res.UploadedBytes)
					}
				}
			})
		})
	}
}

// startSink serves just enough of the upload protocol to take a push, and
// throws the bytes away; HEAD finds a blob only after a push to the same
// repository.
func startSink(tb testing.TB) string {
	var mu sync.Mutex
	have := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/")
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodHead:
			mu.Lock()
			ok := have[repo+"@"+rest]
			mu.Unlock()
			if !ok {
				w.WriteHeader(http.StatusNotFound)
			}
		case r.Method == http.MethodPost:
			w.Header().Set("Location", r.URL.Path+"session")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/"):
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			have[repo+"@"+r.URL.Query().Get("digest")] = true
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
