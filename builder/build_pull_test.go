package builder_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/registry/registrytest"
	"github.com/strata-build/strata/store"
)

// newEmptyEnv is a store with no image in it: base images come from a
// registry.
func newEmptyEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireBusybox(t)
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	return &env{t: t, store: st}
}

// statusOf is the final status of the step whose name ends with suffix.
func statusOf(t *testing.T, ev *events, suffix string) progress.Status {
	t.Helper()
	for name, st := range ev.statuses() {
		if strings.HasSuffix(name, suffix) {
			return st
		}
	}
	t.Fatalf("no step ending with %q in %v", suffix, ev.statuses())
	return ""
}

func hasStep(ev *events, prefix string) bool {
	for name := range ev.statuses() {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func TestBuildFromRegistryPullsMissingBase(t *testing.T) {
	e := newEmptyEnv(t)
	reg := registrytest.Start(t)
	pushed := reg.Push(t, "busybox:latest", registrytest.BusyboxImage(t, registrytest.Platform(), map[string]string{"/etc/motd": "from the registry\n"}))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("busybox") + "\nRUN cat /etc/motd > /seen\n"})

	res, ev := e.mustBuild(dir, builder.Options{})
	if got := fileData(e.readImage(res), "/seen"); got != "from the registry\n" {
		t.Errorf("/seen = %q", got)
	}
	if st := statusOf(t, ev, "pull "+reg.Host+"/busybox:latest"); st != progress.Done {
		t.Errorf("pull step is %s", st)
	}
	tagged, err := e.store.Image(context.Background(), reg.Ref("busybox"))
	if err != nil || tagged.Target.Digest.String() != pushed.String() {
		t.Fatalf("local tag = %+v, %v; want %s", tagged, err, pushed)
	}

	again, ev2 := e.mustBuild(dir, builder.Options{})
	if hasStep(ev2, "pull ") {
		t.Errorf("second build pulled again: %v", ev2.statuses())
	}
	if st := statusOf(t, ev2, "RUN cat /etc/motd > /seen"); st != progress.Cached {
		t.Errorf("second build: RUN is %s, want cached", st)
	}
	if again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("second build gave %s, first %s", again.Manifest.Digest, res.Manifest.Digest)
	}
}

func TestBuildFromRegistryIndexPicksPlatform(t *testing.T) {
	e := newEmptyEnv(t)
	reg := registrytest.Start(t)
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	otherPlatform := v1.Platform{OS: "linux", Architecture: otherArch}
	reg.PushIndex(t, "multi:1", registrytest.Index(
		registrytest.PlatformImage{Platform: otherPlatform, Image: registrytest.BusyboxImage(t, otherPlatform, map[string]string{"/arch": "other\n"})},
		registrytest.PlatformImage{Platform: registrytest.Platform(), Image: registrytest.BusyboxImage(t, registrytest.Platform(), map[string]string{"/arch": "native\n"})},
	))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("multi:1") + "\nRUN cat /arch > /seen\n"})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	if got := fileData(img, "/seen"); got != "native\n" {
		t.Errorf("/seen = %q, want the native platform's file", got)
	}
	if img.config.Architecture != runtime.GOARCH {
		t.Errorf("built image architecture %q", img.config.Architecture)
	}
	// The stored index holds only the native manifest: a build for the
	// other platform fetches that one.
	other := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("multi:1") + "\n"})
	res, ev := e.mustBuild(other, builder.Options{Platform: ocispec.Platform{OS: "linux", Architecture: otherArch}})
	img = e.readImage(res)
	if got := fileData(img, "/arch"); got != "other\n" || img.config.Architecture != otherArch || !hasStep(ev, "pull ") {
		t.Errorf("build for linux/%s: /arch = %q, architecture %q, steps %v", otherArch, got, img.config.Architecture, ev.statuses())
	}
}

func TestBuildPullPicksUpNewDigest(t *testing.T) {
	e := newEmptyEnv(t)
	reg := registrytest.Start(t)
	reg.Push(t, "app:latest", registrytest.BusyboxImage(t, registrytest.Platform(), map[string]string{"/version": "1\n"}))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("app") + "\nRUN cat /version > /out\n"})
	const run = "RUN cat /version > /out"

	first, _ := e.mustBuild(dir, builder.Options{})
	if got := fileData(e.readImage(first), "/out"); got != "1\n" {
		t.Fatalf("first build /out = %q", got)
	}
	second := reg.Push(t, "app:latest", registrytest.BusyboxImage(t, registrytest.Platform(), map[string]string{"/version": "2\n"}))

	// Without --pull the local image wins and nothing runs again.
	res, ev := e.mustBuild(dir, builder.Options{})
	if got := fileData(e.readImage(res), "/out"); got != "1\n" || statusOf(t, ev, run) != progress.Cached || hasStep(ev, "pull ") {
		t.Errorf("build without --pull: /out = %q, statuses %v", got, ev.statuses())
	}
	// With --pull the new digest replaces the tag and the steps after FROM run.
	res, ev = e.mustBuild(dir, builder.Options{Pull: true})
	if got := fileData(e.readImage(res), "/out"); got != "2\n" {
		t.Errorf("build with --pull: /out = %q", got)
	}
	if st := statusOf(t, ev, run); st != progress.Done {
		t.Errorf("build with --pull: RUN is %s, want done", st)
	}
	tagged, err := e.store.Image(context.Background(), reg.Ref("app"))
	if err != nil || tagged.Target.Digest.String() != second.String() {
		t.Fatalf("local tag after --pull = %+v, %v; want %s", tagged, err, second)
	}
	// Pulling the same digest again keeps the cache.
	again, ev := e.mustBuild(dir, builder.Options{Pull: true})
	if st := statusOf(t, ev, run); st != progress.Cached || again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("second --pull build: RUN is %s, image %s vs %s", st, again.Manifest.Digest, res.Manifest.Digest)
	}
	if st := statusOf(t, ev, "load metadata for "+reg.Host+"/app:latest"); st != progress.Done {
		t.Errorf("second --pull build: the registry was not asked (%s)", st)
	}
}

func TestBuildWithUnreachableRegistry(t *testing.T) {
	e := newEmptyEnv(t)
	reg := registrytest.Start(t)
	pushed := reg.Push(t, "app:latest", registrytest.BusyboxImage(t, registrytest.Platform(), nil))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("app") + "\nRUN echo ok > /ok\n"})
	e.mustBuild(dir, builder.Options{})
	reg.Close()

	res, _ := e.mustBuild(dir, builder.Options{})
	if got := fileData(e.readImage(res), "/ok"); got != "ok\n" {
		t.Errorf("offline build /ok = %q", got)
	}
	_, _, err := e.build(dir, builder.Options{Pull: true})
	want := "pull " + reg.Host + "/app:latest from registry " + reg.Host + ": "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("--pull with the registry down = %v, want %q", err, want)
	}
	// A reference by digest that is stored needs no registry, even with --pull.
	byDigest := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("app@"+pushed.String()) + "\nRUN echo ok > /ok\n"})
	if _, ev, err := e.build(byDigest, builder.Options{Pull: true}); err != nil || hasStep(ev, "pull ") {
		t.Fatalf("--pull of a stored digest with the registry down: %v", err)
	}
	missing := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("other:1") + "\n"})
	_, _, err = e.build(missing, builder.Options{})
	want = "image " + reg.Host + "/other:1 not found in the local store and could not be pulled: pull " + reg.Host + "/other:1 from registry " + reg.Host
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("missing image with the registry down = %v, want %q", err, want)
	}
}

func TestBuildFromRegistryWithBasicAuth(t *testing.T) {
	e := newEmptyEnv(t)
	reg := registrytest.Start(t, registrytest.BasicAuth("ci", "token"))
	reg.Push(t, "private/base:1", registrytest.BusyboxImage(t, registrytest.Platform(), nil))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg.Ref("private/base:1") + "\nRUN echo ok > /ok\n"})
	_, _, err := e.build(dir, builder.Options{})
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("build without credentials = %v", err)
	}
	registrytest.DockerConfig(t, reg.Host, "ci", "token")
	res, _ := e.mustBuild(dir, builder.Options{})
	if got := fileData(e.readImage(res), "/ok"); got != "ok\n" {
		t.Errorf("/ok = %q", got)
	}
}
