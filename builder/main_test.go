package builder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/internal/compression"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

func TestMain(m *testing.M) {
	executor.MaybeInit()
	os.Exit(m.Run())
}

// env is a store with the busybox image imported.
type env struct {
	t     *testing.T
	store *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireRoot(t)
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Import(context.Background(), bytes.NewReader(testutil.BusyboxRootfs(t)), store.ImportOptions{Name: "busybox"}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: st}
}

// events records progress, and the build's phases, for assertions.
type events struct {
	mu     sync.Mutex
	all    []progress.Event
	phases []progress.Phase
}

func (e *events) Phase(p progress.Phase) {
	e.mu.Lock()
	e.phases = append(e.phases, p)
	e.mu.Unlock()
}

func (e *events) Emit(ev progress.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// statuses maps vertex names to their final status (cached, done, error).
func (e *events) statuses() map[string]progress.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]progress.Status{}
	for _, ev := range e.all {
		if ev.Status == progress.Cached || ev.Status == progress.Done || ev.Status == progress.Error {
			out[ev.Name] = ev.Status
		}
	}
	return out
}

func (e *events) reasons() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, ev := range e.all {
		if ev.Status == progress.Started && ev.Reason != "" {
			out[ev.Name] = ev.Reason
		}
	}
	return out
}

// writeContext makes a context dir from name -> content.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (e *env) build(dir string, opts builder.Options) (*builder.Result, *events, error) {
	e.t.Helper()
	ev := &events{}
	opts.ContextDir = dir
	opts.Progress = ev
	res, err := builder.Build(context.Background(), e.store, opts)
	return res, ev, err
}

func (e *env) mustBuild(dir string, opts builder.Options) (*builder.Result, *events) {
	e.t.Helper()
	res, ev, err := e.build(dir, opts)
	if err != nil {
		e.t.Fatalf("build: %v", err)
	}
	return res, ev
}

// image is a built image read back from the content store.
type image struct {
	manifest ocispec.Manifest
	config   ocispec.Image
	layers   [][]*tarEntry
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func (e *env) readImage(res *builder.Result) *image {
	e.t.Helper()
	ctx := context.Background()
	r, err := images.Resolve(ctx, e.store.Parts().Content, res.Manifest, ocispec.Platform{})
	if err != nil {
		e.t.Fatal(err)
	}
	img := &image{manifest: r.Manifest, config: r.Config}
	for _, l := range r.Manifest.Layers {
		b, err := e.store.Parts().Content.ReadBlob(ctx, l.Digest)
		if err != nil {
			e.t.Fatal(err)
		}
		img.layers = append(img.layers, readLayer(e.t, b))
	}
	return img
}

func readLayer(t *testing.T, b []byte) []*tarEntry {
	t.Helper()
	zr, _, err := compression.Decompress(bytes.NewReader(b)) // gzip, zstd or a plain tar
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []*tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &tarEntry{hdr: h, data: data})
	}
}

// flatten applies the layers in order (whiteouts included) into a map of
// path -> entry, as a container would see the filesystem.
func (img *image) flatten() map[string]*tarEntry {
	fs := map[string]*tarEntry{}
	for _, l := range img.layers {
		for _, e := range l {
			name := strings.TrimSuffix(strings.TrimPrefix(e.hdr.Name, "./"), "/")
			dir, base := filepath.Split(name)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				for p := range fs {
					if strings.HasPrefix(p, dir+"/") {
						delete(fs, p)
					}
				}
			case strings.HasPrefix(base, ".wh."):
				gone := filepath.Join(dir, strings.TrimPrefix(base, ".wh."))
				for p := range fs {
					if p == gone || strings.HasPrefix(p, gone+"/") {
						delete(fs, p)
					}
				}
			default:
				fs[name] = e
			}
		}
	}
	return fs
}

func (img *image) file(t *testing.T, path string) *tarEntry {
	t.Helper()
	e, ok := img.flatten()[strings.TrimPrefix(path, "/")]
	if !ok {
		t.Fatalf("%s is not in the image", path)
	}
	return e
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
