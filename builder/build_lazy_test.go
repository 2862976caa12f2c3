package builder_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/registry/registrytest"
)

// A step that changes no file has an empty layer: through a cache, the
// image of a second store marks its history entry empty, as the first
// store's does, and both are the same image.
func TestCacheEmptyLayerKeepsHistory(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\nRUN echo a > /a\n"})
	cacheDir := filepath.Join(t.TempDir(), "cache")
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{{Type: "local", Dir: cacheDir, Mode: "max"}}})
	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{{Type: "local", Dir: cacheDir}}, Exports: []exporter.Exporter{exporter.ImageStore{}}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
	img := b.readImage(resB)
	var empty []bool
	for _, h := range img.config.History {
		empty = append(empty, h.EmptyLayer)
	}
	if len(img.manifest.Layers) != 2 || len(empty) != 3 || !empty[1] || empty[2] {
		t.Errorf("%d layers, history empty flags %v; want 2 layers and RUN true marked empty", len(img.manifest.Layers), empty)
	}
}

// blobGets lists the layer and config blobs a registry served, by digest.
func blobGets(requests []string) []string {
	var out []string
	for _, r := range requests {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/sha256:") {
			out = append(out, r)
		}
	}
	return out
}

// A fully cached build on an empty machine that pushes to the registry its
// cache lives in downloads no layer: the image is written from the cache's
// records, and the registry mounts the layers from the cache's repository.
func TestCacheFullyCachedPushDownloadsNoLayer(t *testing.T) {
	a, b, w, reg := twinsAndRegistry(t)
	spec := builder.CacheSpec{Type: "registry", Ref: normalize(t, reg.Ref("app/cache:main")), Mode: "max"}
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "app.txt": "v1\n"})
	// B pushes to another repository than A's: what B's store lacks can
	// only get there by a mount.
	imgA, imgB := normalize(t, reg.Ref("app/img:a")), normalize(t, reg.Ref("app/other:b"))
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}, Exports: []exporter.Exporter{exporter.Registry{Names: []string{imgA}}}})
	w.take()

	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}, Exports: []exporter.Exporter{exporter.Registry{Names: []string{imgB}}}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
	}
	if got := remoteDigest(t, reg.Ref("app/other:b")); got != resA.Manifest.Digest.String() {
		t.Errorf("registry has %s under app/other:b, want %s", got, resA.Manifest.Digest)
	}
	all := w.requests()
	w.take()
	// The cache's config is the one blob read.
	if gets := blobGets(all); len(gets) != 1 {
		t.Errorf("the build read %d blobs, want only the cache config: %v", len(gets), gets)
	}
	img := a.readImage(resA)
	have := blobSet(t, b.store)
	for _, l := range img.manifest.Layers[1:] { // the base layer was in B
		if have[l.Digest] {
			t.Errorf("store B holds layer %s: it was downloaded", l.Digest)
		}
	}
	// A later step that reads the result fetches and unpacks it then.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(cacheDockerfile+"RUN cat /app.txt /size > /both\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}})
	if got := fileData(b.readImage(res), "/both"); got != "v1\n300000\n" {
		t.Errorf("/both = %q", got)
	}
}

// twinsAndRegistry are a store, its twin (another machine) and a registry
// whose requests w records.
func twinsAndRegistry(t *testing.T) (a, b *env, w *writes, reg *registrytest.Server) {
	a = newEnv(t)
	b = a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	w = &writes{}
	return a, b, w, registrytest.Start(t, w.wrap)
}

// A stage whose result no step reads costs nothing: an empty store
// neither downloads its base image's layers nor tags that image.
func TestCacheUnreadStageBaseIsNotPulled(t *testing.T) {
	a, b, w, reg := twinsAndRegistry(t)
	tools := normalize(t, reg.Ref("app/tools:1"))
	toolsDir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo tool > /tool\n"})
	toolsRes, _ := a.mustBuild(toolsDir, builder.Options{Exports: []exporter.Exporter{exporter.Registry{Names: []string{tools}}}})
	toolsImg := a.readImage(toolsRes)
	toolLayer := toolsImg.manifest.Layers[len(toolsImg.manifest.Layers)-1].Digest

	spec := builder.CacheSpec{Type: "registry", Ref: normalize(t, reg.Ref("app/cache:main")), Mode: "max"}
	df := "FROM " + reg.Ref("app/tools:1") + " AS tools\nRUN cat /tool > /t2\nFROM busybox\nCOPY --from=tools /t2 /t2\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}})
	w.take()

	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}, Exports: []exporter.Exporter{exporter.ImageStore{}}})
	allCached(t, ev)
	if resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("store B built %s, store A %s", resB.Manifest.Digest, resA.Manifest.Digest)
		t.Logf("A: %+v %v", a.readImage(resA).config.History, a.readImage(resA).manifest.Layers)
		t.Logf("B: %+v %v", b.readImage(resB).config.History, b.readImage(resB).manifest.Layers)
	}
	all := w.requests()
	for _, g := range blobGets(all) {
		if strings.Contains(g, toolLayer.String()) {
			t.Errorf("store B downloaded the unread stage's base layer: %s", g)
		}
	}
	if blobSet(t, b.store)[toolLayer] {
		t.Errorf("store B holds the unread stage's base layer %s", toolLayer)
	}
	if _, err := b.store.Image(context.Background(), tools); err == nil {
		t.Errorf("store B tagged %s, whose layers it does not hold", tools)
	}
	if got := fileData(b.readImage(resB), "/t2"); got != "tool\n" {
		t.Errorf("/t2 = %q", got)
	}
}

// A fully cached build that pushes to another registry than its cache's
// fetches the layers the push must upload, and only those, from the cache.
func TestCacheFullyCachedPushToAnotherRegistry(t *testing.T) {
	a := newEnv(t)
	b := a.twin(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	w := &writes{}
	cacheReg, imgReg := registrytest.Start(t, w.wrap), registrytest.Start(t)
	spec := builder.CacheSpec{Type: "registry", Ref: normalize(t, cacheReg.Ref("app/cache:main")), Mode: "max"}
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "app.txt": "v1\n"})
	resA, _ := a.mustBuild(dir, builder.Options{CacheTo: []builder.CacheSpec{spec}})
	w.take()
	target := normalize(t, imgReg.Ref("app/img:1"))
	resB, ev := b.mustBuild(dir, builder.Options{CacheFrom: []builder.CacheSpec{spec}, Exports: []exporter.Exporter{exporter.Registry{Names: []string{target}}}})
	allCached(t, ev)
	if got := remoteDigest(t, imgReg.Ref("app/img:1")); got != resA.Manifest.Digest.String() || resB.Manifest.Digest != resA.Manifest.Digest {
		t.Errorf("pushed %s, built %s, store A built %s", got, resB.Manifest.Digest, resA.Manifest.Digest)
	}
	all := w.requests()
	// The cache config, then the final image's two layers above the base
	// (the side stage's layer stays where it is).
	img := a.readImage(resA)
	gets := blobGets(all)
	if len(gets) != 1+len(img.manifest.Layers)-1 {
		t.Errorf("blob reads %v, want the cache config and the image's %d new layers", gets, len(img.manifest.Layers)-1)
	}
	if side := sideLayer(t, a, dir); blobSet(t, b.store)[side] {
		t.Errorf("store B fetched the side stage's layer")
	}
}
