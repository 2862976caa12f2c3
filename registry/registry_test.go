package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// store is a fresh content store and image store.
type store struct {
	cs *content.Store
	is *images.Store
}

func newStore(t *testing.T) *store {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.Open(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	return &store{cs: cs, is: images.NewStore(db)}
}

// testHosts is a Resolver for opts that ignores the machine's settings
// unless opts sets them: no STRATA_INSECURE_REGISTRIES, no certs.d, no
// retry waits longer than a millisecond; credentials come from the docker
// config file of $DOCKER_CONFIG, as the test sets it.
func testHosts(opts hosts.Options) *hosts.Resolver {
	if opts.Insecure == nil {
		opts.Insecure = []string{}
	}
	if opts.CertsDirs == nil {
		opts.CertsDirs = []string{}
	}
	if opts.Retry.Backoff == 0 {
		opts.Retry.Backoff = time.Millisecond
	}
	return hosts.NewResolver(opts)
}

// puller is a Puller of the store; opts.Hosts defaults to testHosts.
func (s *store) puller(opts registry.Options) *registry.Puller {
	if opts.Hosts == nil {
		opts.Hosts = testHosts(hosts.Options{})
	}
	return registry.New(s.cs, s.is, opts)
}

var linuxAMD64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(2048, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkBlobs asserts the store holds every blob of img with the registry's bytes.
func (s *store) checkBlobs(t *testing.T, img v1.Image) {
	t.Helper()
	ctx := context.Background()
	raw, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	if got, err := s.cs.ReadBlob(ctx, digest.Digest(cfgName.String())); err != nil || !bytes.Equal(got, raw) {
		t.Errorf("config blob %s: %v (equal: %v)", cfgName, err, bytes.Equal(got, raw))
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		rc, _ := l.Compressed()
		want, _ := io.ReadAll(rc)
		rc.Close()
		got, err := s.cs.ReadBlob(ctx, digest.Digest(d.String()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("layer blob %s: %v (equal: %v)", d, err, bytes.Equal(got, want))
		}
	}
}

func TestPullStoresImageAndSkipsPresentBlobs(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	img := randomImage(t, 3)
	want := reg.Push(t, "app/x:1", img)
	s := newStore(t)
	var mu sync.Mutex
	var evs []progress.Event
	p := s.puller(registry.Options{Progress: progress.SinkFunc(func(e progress.Event) {
		mu.Lock()
		evs = append(evs, e)
		mu.Unlock()
	})})

	res, err := p.Pull(ctx, reg.Ref("app/x:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	name := reg.Host + "/app/x:1"
	if res.Image.Name != name || res.Image.Target.Digest.String() != want.String() || res.Manifest.Digest != res.Image.Target.Digest {
		t.Fatalf("result = %+v, want %s -> %s", res, name, want)
	}
	if res.Registry != reg.Host || !res.Updated || res.Fetched != 4 || res.Present != 0 || res.FetchedBytes <= 3*2048 {
		t.Fatalf("result counts = %+v", res)
	}
	tagged, err := s.is.Get(ctx, name)
	if err != nil || tagged.Target.Digest != res.Image.Target.Digest || tagged.Target.MediaType != images.MediaTypeDockerManifest {
		t.Fatalf("tag = %+v, %v", tagged, err)
	}
	s.checkBlobs(t, img)
	r, err := images.Resolve(ctx, s.cs, tagged.Target, linuxAMD64)
	if err != nil || len(r.Manifest.Layers) != 3 {
		t.Fatalf("resolve pulled image: %v", err)
	}
	mu.Lock()
	if len(evs) != 6 || evs[0].Status != progress.Started || evs[5].Status != progress.Done || evs[0].Name != "pull "+name {
		t.Errorf("progress events = %+v", evs)
	}
	if last := evs[len(evs)-1]; last.Bytes != res.FetchedBytes {
		t.Errorf("the pull's Done event says %d bytes, want the %d fetched", last.Bytes, res.FetchedBytes)
	}
	mu.Unlock()

	again, err := p.Pull(ctx, reg.Ref("app/x:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if again.Updated || again.Fetched != 0 || again.Present != 4 || again.Image.Target.Digest != res.Image.Target.Digest {
		t.Fatalf("second pull = %+v", again)
	}
}

func TestPullByDigest(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	img := randomImage(t, 1)
	d := reg.Push(t, "app:1", img)
	s := newStore(t)
	res, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app@"+d.String()), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Name != reg.Host+"/app@"+d.String() || res.Image.Target.Digest.String() != d.String() {
		t.Fatalf("result = %+v", res)
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	_, err = s.puller(registry.Options{}).Pull(ctx, reg.Ref("app@"+missing), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Fatalf("pull of an unknown digest = %v", err)
	}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	amd, arm := randomImage(t, 1), randomImage(t, 2)
	armV8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := registrytest.Index(
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd},
		registrytest.PlatformImage{Platform: armV8, Image: arm},
	)
	idxDigest := reg.PushIndex(t, "multi:latest", idx)
	armDigest, _ := arm.Digest()
	amdCfg, _ := amd.ConfigName()

	s := newStore(t)
	res, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("multi"), ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Target.Digest.String() != idxDigest.String() || !images.IsIndex(res.Image.Target.MediaType) {
		t.Fatalf("target = %+v, want index %s", res.Image.Target, idxDigest)
	}
	if res.Manifest.Digest.String() != armDigest.String() || res.Manifest.Platform == nil || res.Manifest.Platform.Architecture != "arm64" {
		t.Fatalf("manifest = %+v, want arm64 %s", res.Manifest, armDigest)
	}
	if res.Fetched != 3 {
		t.Errorf("fetched %d blobs, want 3 (config and two layers of arm64)", res.Fetched)
	}
	s.checkBlobs(t, arm)
	if _, err := s.cs.Info(ctx, digest.Digest(amdCfg.String())); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("amd64 config was fetched: %v", err)
	}
	r, err := images.Resolve(ctx, s.cs, res.Image.Target, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil || r.ManifestDesc.Digest != res.Manifest.Digest {
		t.Fatalf("resolve the stored index: %+v, %v", r, err)
	}

	_, err = s.puller(registry.Options{}).Pull(ctx, reg.Ref("multi"), ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if err == nil || !strings.Contains(err.Error(), "no manifest for platform linux/s390x") || !strings.Contains(err.Error(), reg.Host+"/multi:latest") {
		t.Fatalf("pull for a missing platform = %v", err)
	}
}

func TestPullNewDigestMovesTag(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	first := reg.Push(t, "app:1", randomImage(t, 1))
	s := newStore(t)
	p := s.puller(registry.Options{})
	if _, err := p.Pull(ctx, reg.Ref("app:1"), linuxAMD64); err != nil {
		t.Fatal(err)
	}
	second := reg.Push(t, "app:1", randomImage(t, 1))
	res, err := p.Pull(ctx, reg.Ref("app:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || res.Image.Target.Digest.String() != second.String() || first == second {
		t.Fatalf("second pull = %+v, want %s (first %s)", res, second, first)
	}
	if res.Image.Created.After(res.Image.Updated) {
		t.Errorf("created %v after updated %v", res.Image.Created, res.Image.Updated)
	}
}

func TestPullRefusesCorruptBlob(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 2)
	layers, _ := img.Layers()
	bad, _ := layers[1].Digest()
	reg := registrytest.Start(t, registrytest.CorruptBlob(bad))
	reg.Push(t, "app:1", img)
	s := newStore(t)
	_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("app:1"), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("pull of a corrupt blob = %v, want an error naming %s", err, bad)
	}
	t.Logf("corrupt blob: %v", err)
	if _, err := s.cs.Info(ctx, digest.Digest(bad.String())); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("corrupt blob was stored: %v", err)
	}
	if _, err := s.is.Get(ctx, reg.Ref("app:1")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image tagged despite a corrupt blob: %v", err)
	}
	ingest, _ := os.ReadDir(filepath.Join(s.cs.Root(), "ingest"))
	if len(ingest) != 0 {
		t.Errorf("ingest debris left: %v", ingest)
	}
}

func TestPullBasicAuthFromDockerConfig(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	d := reg.Push(t, "private:1", randomImage(t, 1))
	s := newStore(t)

	registrytest.DockerConfig(t, reg.Host, "alice", "wrong")
	_, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("private:1"), linuxAMD64)
	if !errors.Is(err, registry.ErrAuth) || !strings.Contains(err.Error(), "authentication failed for "+reg.Host+": ") || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("pull with wrong credentials = %v", err)
	}
	t.Logf("wrong credentials: %v", err)
	registrytest.DockerConfig(t, reg.Host, "alice", "s3cret")
	res, err := s.puller(registry.Options{}).Pull(ctx, reg.Ref("private:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Target.Digest.String() != d.String() {
		t.Fatalf("pulled %s, want %s", res.Image.Target.Digest, d)
	}
}

func TestPullUnreachableRegistry(t *testing.T) {
	reg := registrytest.Start(t)
	reg.Close()
	s := newStore(t)
	_, err := s.puller(registry.Options{}).Pull(context.Background(), reg.Ref("busybox"), linuxAMD64)
	want := "pull " + reg.Host + "/busybox:latest from registry " + reg.Host + ": "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("pull from a closed registry = %v, want %q and connection refused", err, want)
	}
	t.Logf("closed registry: %v", err)
}

// dialTo is a transport that dials target for every address, so a
// registry on 127.0.0.1 can be addressed by any host name; nothing is sent
// elsewhere, not even a DNS query.
func dialTo(target string) http.RoundTripper {
	return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}}
}

// TestInsecureRegistries: a registry that is not a loopback host is reached
// over plain HTTP when STRATA_INSECURE_REGISTRIES lists it, or, for a push,
// when the Resolver is derived by WithInsecure (registry.insecure=true).
func TestInsecureRegistries(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	img := randomImage(t, 1)
	d := reg.Push(t, "app:1", img)
	ref := "registry.example:5000/app:1"
	resolver := func() *hosts.Resolver {
		// Insecure nil: the list in STRATA_INSECURE_REGISTRIES.
		return hosts.NewResolver(hosts.Options{CertsDirs: []string{}, Transport: dialTo(reg.Host), Keychain: hosts.Keychain(t.TempDir())})
	}
	t.Setenv(hosts.InsecureEnv, "")
	s := newStore(t)
	_, err := s.puller(registry.Options{Hosts: resolver()}).Pull(ctx, ref, linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), "from registry registry.example:5000") || !strings.Contains(err.Error(), "HTTP response to HTTPS client") {
		t.Fatalf("plain-HTTP pull from a registry not listed = %v, want an https failure", err)
	}
	t.Logf("not listed: %v", err)
	for _, env := range []string{"other.example, registry.example:5000", "registry.example"} {
		t.Setenv(hosts.InsecureEnv, env)
		res, err := s.puller(registry.Options{Hosts: resolver()}).Pull(ctx, ref, linuxAMD64)
		if err != nil {
			t.Fatalf("%s=%q: %v", hosts.InsecureEnv, env, err)
		}
		if res.Image.Target.Digest.String() != d.String() || res.Image.Name != ref || res.Registry != "registry.example:5000" {
			t.Fatalf("pulled %+v, want %s from registry.example:5000", res, d)
		}
	}

	t.Setenv(hosts.InsecureEnv, "")
	desc := registrytest.StoreImage(t, s.cs, img)
	_, err = s.pusher(registry.Options{Hosts: resolver()}).Push(ctx, desc, []string{"registry.example:5000/pushed:1"})
	if err == nil || !strings.Contains(err.Error(), "to registry registry.example:5000") {
		t.Fatalf("push to a registry not marked insecure = %v, want an https failure", err)
	}
	res, err := s.pusher(registry.Options{Hosts: resolver().WithInsecure("registry.example:5000")}).Push(ctx, desc, []string{"registry.example:5000/pushed:1"})
	if err != nil {
		t.Fatalf("push with WithInsecure: %v", err)
	}
	if res.Refs[0] != "registry.example:5000/pushed:1@"+desc.Digest.String() {
		t.Errorf("refs = %q", res.Refs)
	}
	checkRemote(t, s.cs, reg.Ref("pushed:1"), desc.Digest)
}
