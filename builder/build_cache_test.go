package builder_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry/registrytest"
	"github.com/strata-build/strata/store"
)

// twin is a second, empty store holding the same busybox image as e's (the
// same bytes, so the same cache keys): another CI machine.
func (e *env) twin(t *testing.T) *env {
	t.Helper()
	var buf bytes.Buffer
	if err := e.store.Save(context.Background(), []string{"busybox"}, &buf); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Load(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: st}
}

// cacheDockerfile has a side stage whose result the final stage reads
// through a bind mount (keyed by the side stage's cache key, not its
// content): a fully cached build never needs the side stage's layer.
const cacheDockerfile = `FROM busybox AS side
RUN head -c 300000 /dev/urandom > /side.bin
FROM busybox
COPY app.txt /app.txt
RUN --mount=type=bind,from=side,target=/s wc -c < /s/side.bin > /size
`

func allCached(t *testing.T, ev *events) {
	t.Helper()
	for name, st := range ev.statuses() {
		if st != progress.Cached && !strings.HasPrefix(name, "pushing ") && !strings.HasPrefix(name, "exporting to ") && !strings.HasPrefix(name, "[internal]") && !strings.Contains(name, "load build context") {
			t.Errorf("step %q: %s, want CACHED", name, st)
		}
	}
}

// sideLayer is the blob of the side stage's RUN in a's store.
func sideLayer(t *testing.T, a *env, dir string) digest.Digest {
	t.Helper()
	res, _ := a.mustBuild(dir, builder.Options{Target: "side"})
	img := a.readImage(res)
	return img.manifest.Layers[len(img.manifest.Layers)-1].Digest
}

// A cache exported to an OCI layout by one store lets an empty store run
// nothing, fetching only the layers the final image needs, and a changed
// file re-runs only the steps after it.
func TestCacheLocalBetweenStores(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "app.txt": "v1\n"})
	cacheDir := filepath.Join(t.TempDir(), "cache")
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{{Type: "local", Dir: cacheDir, Mode: "max"}}})
	side := sideLayer(t, a, dir)
	if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", side.Encoded())); err != nil {
		t.Fatalf("mode=max did not export the side stage's layer: %v", err)
	}

	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{{Type: "local", Dir: cacheDir}}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
	if blobSet(t, b.store)[side] {
		t.Errorf("store B fetched the side stage's layer %s, which no step read", side)
	}

	// One file changed: the COPY and the RUN after it run, the side stage
	// comes from the cache (fetched now, since the RUN reads it).
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := a.twin(t)
	_, ev = c.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{{Type: "local", Dir: cacheDir}}})
	st := ev.statuses()
	if s := statusOf(t, ev, "COPY app.txt /app.txt"); s != progress.Done {
		t.Errorf("COPY of the changed file: %s (%v)", s, st)
	}
	if s := statusOf(t, ev, "RUN head -c 300000 /dev/urandom > /side.bin"); s != progress.Cached {
		t.Errorf("side stage: %s, want CACHED from the imported cache", s)
	}
	if !blobSet(t, c.store)[side] {
		t.Errorf("the side stage's layer was not fetched although the RUN read it")
	}
}

// A missing cache is a warning, not a failed build; a cache-to that fails
// fails the build unless ignore-error.
func TestCacheMissingIsAWarning(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
	var warn bytes.Buffer
	_, _, err := e.build(dir, builder.Options{Warnings: &warn, CacheFrom: []builder.CacheSpec{{Type: "local", Dir: filepath.Join(t.TempDir(), "none")}}})
	if err != nil || !strings.Contains(warn.String(), "WARNING: cache import from local") {
		t.Errorf("build with a missing cache: %v, warnings %q", err, warn.String())
	}
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := builder.CacheSpec{Type: "local", Dir: filepath.Join(blocked, "sub")}
	if _, _, err := e.build(dir, builder.Options{CacheTo: []builder.CacheSpec{bad}}); err == nil || !strings.Contains(err.Error(), "cache export to local") {
		t.Errorf("a failing cache export: %v, want an error", err)
	}
	bad.IgnoreError = true
	warn.Reset()
	if _, _, err := e.build(dir, builder.Options{Warnings: &warn, CacheTo: []builder.CacheSpec{bad}}); err != nil || !strings.Contains(warn.String(), "WARNING: cache export to local") {
		t.Errorf("ignore-error=true: %v, warnings %q", err, warn.String())
	}
}

// writes counts the requests that change a registry.
type writes struct {
	mu  sync.Mutex
	n   []string
	all []string // every request
}

func (w *writes) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.n = append(w.n, r.Method+" "+r.URL.Path)
		}
		w.all = append(w.all, r.Method+" "+r.URL.Path)
		w.mu.Unlock()
		h.ServeHTTP(rw, r)
	})
}

// requests lists every request since the last take.
func (w *writes) requests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.all...)
}

func (w *writes) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.n
	w.n, w.all = nil, nil
	return out
}

// The registry cache between two stores: the second runs nothing, and
// exporting its unchanged cache back writes nothing to the registry.
func TestCacheRegistryBetweenStores(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	w := &writes{}
	reg := registrytest.Start(t, w.wrap)
	ref := normalize(t, reg.Ref("app/cache:main"))
	spec := builder.CacheSpec{Type: "registry", Ref: ref, Mode: "max"}
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "app.txt": "v1\n"})
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}})
	if len(w.take()) == 0 {
		t.Fatal("the cache export wrote nothing")
	}
	side := sideLayer(t, a, dir)

	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}, CacheTo: []builder.CacheSpec{spec}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
	if blobSet(t, b.store)[side] {
		t.Errorf("store B fetched the side stage's layer, which no step read")
	}
	all := w.requests()
	t.Logf("a fully cached build importing and exporting the cache made %d requests: %v", len(all), all)
	if got := w.take(); len(got) != 0 {
		t.Errorf("exporting an unchanged cache wrote to the registry: %v", got)
	}
}

// An inline cache rides in the pushed image: --cache-from of the image
// lets an empty store run nothing.
func TestCacheInline(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t)
	ref := normalize(t, reg.Ref("app:1"))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n", "app.txt": "v1\n"})
	resA, _ := a.mustBuild(dir, builder.Options{Tags: []string{ref}, Exports: []exporter.Exporter{exporter.Registry{}},
		CacheTo: []builder.CacheSpec{{Type: "inline"}}})
	resB, ev := b.mustBuild(dir, builder.Options{Tags: []string{ref}, Exports: []exporter.Exporter{exporter.ImageStore{}},
		CacheFrom: []builder.CacheSpec{{Type: "registry", Ref: ref}}, CacheTo: []builder.CacheSpec{{Type: "inline"}}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
}

// A fully cached build whose final stage copies from another stage needs
// the key of that COPY, not the other stage's files: the cache's link
// says which key the COPY had, so the other stage is never fetched.
func TestCacheCopyFromStageFetchesNothingOfTheStage(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	df := "FROM busybox AS build\nRUN head -c 200000 /dev/urandom > /big && echo built > /out\nFROM busybox\nCOPY --from=build /out /out\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	cacheDir := filepath.Join(t.TempDir(), "cache")
	spec := builder.CacheSpec{Type: "local", Dir: cacheDir, Mode: "max"}
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}})
	res, _ := a.mustBuild(dir, builder.Options{Target: "build"})
	img := a.readImage(res)
	stage := img.manifest.Layers[len(img.manifest.Layers)-1].Digest

	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
	if blobSet(t, b.store)[stage] {
		t.Errorf("store B fetched the build stage's layer %s, which the cached COPY did not need", stage)
	}
	// A no-op rebuild on A finds the COPY's key by its link too.
	_, ev = a.mustBuild(dir, builder.Options{})
	allCached(t, ev)
}

// Two jobs exporting to one cache ref at once: the ref ends as one of
// them, whole (its manifest goes up last, after every blob it names), and
// a third machine builds that job's image from it running nothing.
func TestCacheRefWrittenByTwoJobsAtOnce(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t)
	spec := builder.CacheSpec{Type: "registry", Ref: normalize(t, reg.Ref("app/cache:main")), Mode: "max"}
	dirs := []string{
		writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 100000 /dev/urandom > /a\n"}),
		writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 100000 /dev/urandom > /b\n"}),
	}
	results := make([]*builder.Result, 2)
	var wg sync.WaitGroup
	for i, e := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _, err := e.build(dirs[i], builder.Options{CacheTo: []builder.CacheSpec{spec}})
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	c := a.twin(t)
	hits := 0
	for i, dir := range dirs {
		res, ev := c.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}})
		if statusOf(t, ev, "RUN head -c 100000 /dev/urandom > /"+string(rune('a'+i))) == progress.Cached {
			hits++
			if res.Manifest.Digest != results[i].Manifest.Digest {
				t.Errorf("job %d's image from the cache is %s, the job built %s", i, res.Manifest.Digest, results[i].Manifest.Digest)
			}
		}
	}
	if hits != 1 {
		t.Errorf("the cache ref serves %d of the two jobs, want exactly one", hits)
	}
}

// A registry that refuses the cache manifest because a carried layer is
// gone (garbage-collected) gets this build's own records instead.
func TestCacheExportWithoutLostCarriedLayers(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	var refused atomic.Int32
	refuseFirstManifest := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && refused.Load() == 1 {
				refused.Add(1)
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	reg := registrytest.Start(t, refuseFirstManifest)
	spec := builder.CacheSpec{Type: "registry", Ref: normalize(t, reg.Ref("app/cache:main")), Mode: "max"}
	// The side stage feeds a step that B's build finds cached without
	// loading it: its record is carried over, not seen.
	df := `FROM busybox AS side
RUN head -c 300000 /dev/urandom > /side.bin
FROM busybox AS mid
RUN --mount=type=bind,from=side,target=/s wc -c < /s/side.bin > /size
FROM mid
COPY app.txt /app.txt
`
	dir := writeContext(t, map[string]string{"Dockerfile": df, "app.txt": "v1\n"})
	a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}})
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused.Store(1) // B's first manifest PUT is refused
	if _, _, err := b.build(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}, CacheTo: []builder.CacheSpec{spec}}); err != nil {
		t.Fatalf("export after a refused manifest: %v", err)
	}
	if refused.Load() != 2 {
		t.Fatalf("the manifest was not refused once (%d)", refused.Load())
	}
	// The cache now holds B's build: a third store runs nothing for it.
	c := a.twin(t)
	_, ev := c.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}})
	allCached(t, ev)
}

// A cached build that imports from one layout and exports to another
// carries the records it did not reach, fetching their layers from the
// first layout; exported back to the layout it came from, it copies none.
func TestCacheLocalCarriesUnreachedRecords(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "app.txt": "v1\n"})
	first, second := filepath.Join(t.TempDir(), "c1"), filepath.Join(t.TempDir(), "c2")
	a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{{Type: "local", Dir: first, Mode: "max"}}})
	side := sideLayer(t, a, dir)
	from := builder.CacheSpec{Type: "local", Dir: first}
	_, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{from},
		CacheTo: []builder.CacheSpec{{Type: "local", Dir: first, Mode: "max"}}})
	allCached(t, ev)
	if blobSet(t, b.store)[side] {
		t.Errorf("exporting back to the layout it came from fetched the side stage's layer")
	}
	b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{from},
		CacheTo: []builder.CacheSpec{{Type: "local", Dir: second, Mode: "max"}}})
	if _, err := os.Stat(filepath.Join(second, "blobs", "sha256", side.Encoded())); err != nil {
		t.Errorf("the carried side stage's layer is not in the new layout: %v", err)
	}
}

// A COPY miss names the files by the paths their user knows: the edited
// files under app/ by their context paths, not relative to the COPY source,
// and a file of a stage by its path in that stage.
func TestMissReasonsNameSourcePaths(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox AS gen
ARG V
RUN mkdir /out && echo $V > /out/v && echo same > /out/s
FROM busybox
COPY --from=gen /out /gen
COPY app/ /src/
`
	dir := writeContext(t, map[string]string{"Dockerfile": df, "app/a.go": "a1", "app/b.go": "b1", "app/c.go": "c1"})
	v1 := builder.Options{BuildArgs: map[string]string{"V": "1"}}
	e.mustBuild(dir, v1)
	for _, f := range []string{"a.go", "b.go"} {
		if err := os.WriteFile(filepath.Join(dir, "app", f), []byte("v2"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, ev := e.mustBuild(dir, v1)
	checkEventReasons(t, ev, map[string]string{"COPY app/ /src/": "2 files changed: app/a.go, app/b.go"})
	_, ev = e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"V": "2"}})
	checkEventReasons(t, ev, map[string]string{"COPY --from=gen /out /gen": "/out/v changed"})
}

// checkEventReasons checks the miss reasons progress gave the steps whose
// names end in want's keys.
func checkEventReasons(t *testing.T, ev *events, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for name, r := range ev.reasons() {
		for suffix := range want {
			if strings.HasSuffix(name, suffix) {
				got[suffix] = r
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("miss reasons (-want +got):\n%s", diff)
	}
}
