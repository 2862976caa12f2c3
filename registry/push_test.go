package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// events collects progress events.
type events struct {
	mu  sync.Mutex
	evs []progress.Event
}

func (e *events) Emit(ev progress.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) list() []progress.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]progress.Event(nil), e.evs...)
}

// logText is the log output of the events, joined.
func (e *events) logText() string {
	var b strings.Builder
	for _, ev := range e.list() {
		if ev.Status == progress.Log {
			b.Write(ev.Data)
		}
	}
	return b.String()
}

// pusher is a Pusher of the store; opts.Hosts defaults to testHosts.
func (s *store) pusher(opts registry.Options) *registry.Pusher {
	if opts.Hosts == nil {
		opts.Hosts = testHosts(hosts.Options{})
	}
	return registry.NewPusher(s.cs, opts)
}

func sizeOf(blobs []v1.Descriptor) int64 {
	var n int64
	for _, b := range blobs {
		n += b.Size
	}
	return n
}

// checkRemote pulls ref back with go-containerregistry and compares its
// manifest digest with want and every layer's bytes with the content store.
func checkRemote(t *testing.T, cs *content.Store, ref string, want digest.Digest) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull back %s: %v", ref, err)
	}
	got, err := img.Digest()
	if err != nil || got.String() != want.String() {
		t.Fatalf("%s has digest %s (%v), pushed %s", ref, got, err, want)
	}
	cfgName, _ := img.ConfigName()
	raw, _ := img.RawConfigFile()
	if stored, err := cs.ReadBlob(context.Background(), digest.Digest(cfgName.String())); err != nil || !bytes.Equal(stored, raw) {
		t.Errorf("%s: config differs from the store's: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("%s: layer %s: %v", ref, d, err)
		}
		remoteBytes, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: layer %s: %v", ref, d, err)
		}
		stored, err := cs.ReadBlob(context.Background(), digest.Digest(d.String()))
		if err != nil || !bytes.Equal(stored, remoteBytes) {
			t.Errorf("%s: layer %s differs from the store's (%v)", ref, d, err)
		}
	}
}

// tagExists reports whether ref names a manifest in its registry.
func tagExists(t *testing.T, ref string) bool {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r)
	return err == nil
}

func TestPushImageThenRepushSkipsEverything(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	s := newStore(t)
	img := randomImage(t, 3)
	desc := registrytest.StoreImage(t, s.cs, img)
	blobs := blobsOf(t, img)
	evs := &events{}
	p := s.pusher(registry.Options{Progress: evs})

	res, err := p.Push(ctx, desc, []string{reg.Ref("app/x:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Digest != desc.Digest || res.Target.MediaType != string(types.DockerManifestSchema2) || res.Target.Size != desc.Size {
		t.Errorf("target = %+v, want %+v", res.Target, desc)
	}
	if want := reg.Host + "/app/x:1@" + desc.Digest.String(); len(res.Refs) != 1 || res.Refs[0] != want {
		t.Errorf("refs = %q, want %q", res.Refs, want)
	}
	if res.Uploaded != 4 || res.Skipped != 0 || res.Mounted != 0 || res.UploadedBytes != sizeOf(blobs) || res.Manifests != 1 || res.Retries != 0 {
		t.Errorf("first push = %+v, want 4 blobs (%d bytes) uploaded and one manifest", res, sizeOf(blobs))
	}
	if got := rec.BlobBytes(); got != sizeOf(blobs) {
		t.Errorf("registry received %d blob bytes, want %d", got, sizeOf(blobs))
	}
	checkRemote(t, s.cs, reg.Ref("app/x:1"), desc.Digest)

	list := evs.list()
	if len(list) < 2 || list[0].Status != progress.Started || list[len(list)-1].Status != progress.Done || list[0].Name != "pushing "+reg.Host+"/app/x:1" {
		t.Errorf("progress: first %+v, last %+v", list[0], list[len(list)-1])
	}
	if last := list[len(list)-1]; last.Bytes != res.UploadedBytes {
		t.Errorf("the push's Done event says %d bytes, want the %d uploaded", last.Bytes, res.UploadedBytes)
	}
	text := evs.logText()
	for _, b := range blobs {
		if !strings.Contains(text, b.Digest.String()+": pushed ") {
			t.Errorf("progress does not report blob %s pushed:\n%s", b.Digest, text)
		}
	}
	if !strings.Contains(text, "manifest "+desc.Digest.String()+": pushed as "+reg.Host+"/app/x:1") {
		t.Errorf("progress does not report the manifest:\n%s", text)
	}

	rec.Reset()
	again, err := p.Push(ctx, desc, []string{reg.Ref("app/x:1")})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.Skipped != 4 || again.Mounted != 0 || again.UploadedBytes != 0 || again.Manifests != 1 {
		t.Errorf("second push = %+v, want all 4 blobs skipped", again)
	}
	if got := rec.BlobBytes(); got != 0 {
		t.Errorf("second push sent %d blob bytes", got)
	}
	var methods []string
	for _, r := range rec.Requests() {
		methods = append(methods, r.Method+" "+r.Path)
	}
	// The ping, a HEAD finding the manifest in the repository (so no HEAD
	// per blob), the tag.
	want := []string{"GET /v2/", "HEAD /v2/app/x/manifests/" + desc.Digest.String(), "PUT /v2/app/x/manifests/1"}
	if fmt.Sprint(methods) != fmt.Sprint(want) {
		t.Errorf("requests of a push that changes nothing = %q, want %q", methods, want)
	}

	// A new image sharing the layers: a HEAD per blob finds those.
	l, err := random.Layer(1024, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img2 := appendLayer(t, img, l)
	desc2 := registrytest.StoreImage(t, s.cs, img2)
	rec.Reset()
	res2, err := p.Push(ctx, desc2, []string{reg.Ref("app/x:2")})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Skipped != 3 || res2.Uploaded != 2 {
		t.Errorf("push of an image sharing 3 layers = %+v, want 3 skipped, 2 uploaded (config and new layer)", res2)
	}
	if n := rec.Count(func(r registrytest.Request) bool {
		return r.Method == http.MethodHead && strings.Contains(r.Path, "/blobs/")
	}); n != 5 {
		t.Errorf("%d blob HEADs, want 5", n)
	}
	checkRemote(t, s.cs, reg.Ref("app/x:2"), desc2.Digest)
}

func TestPushMountsFromAnotherRepository(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	s := newStore(t)
	img := randomImage(t, 2)
	desc := registrytest.StoreImage(t, s.cs, img)
	sources := &registry.MemorySources{}
	p := s.pusher(registry.Options{Sources: sources})
	if _, err := p.Push(ctx, desc, []string{reg.Ref("first:1")}); err != nil {
		t.Fatal(err)
	}
	for _, b := range blobsOf(t, img) {
		if got := sources.Sources(digest.Digest(b.Digest.String())); len(got) != 1 || got[0] != reg.Host+"/first" {
			t.Errorf("sources of %s = %q, want [%s/first]", b.Digest, got, reg.Host)
		}
	}

	rec.Reset()
	evs := &events{}
	p = s.pusher(registry.Options{Sources: sources, Progress: evs})
	res, err := p.Push(ctx, desc, []string{reg.Ref("second:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mounted != 3 || res.Uploaded != 0 || res.Skipped != 0 || res.UploadedBytes != 0 {
		t.Errorf("push to a second repository = %+v, want 3 blobs mounted", res)
	}
	mounts := rec.Count(func(r registrytest.Request) bool {
		return r.IsMount() && r.Query.Get("from") == "first" && r.Path == "/v2/second/blobs/uploads/" && r.Status == http.StatusCreated
	})
	if mounts != 3 || rec.BlobBytes() != 0 {
		t.Errorf("registry saw %d mounts from first and %d blob bytes, want 3 and 0", mounts, rec.BlobBytes())
	}
	if !strings.Contains(evs.logText(), ": mounted from "+reg.Host+"/first") {
		t.Errorf("progress does not report mounts:\n%s", evs.logText())
	}
	checkRemote(t, s.cs, reg.Ref("second:1"), desc.Digest)
}

func TestPushMountsWhatWasPulled(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	img := randomImage(t, 2)
	d := reg.Push(t, "base:1", img)
	s := newStore(t)
	sources := &registry.MemorySources{}
	pulled, err := s.puller(registry.Options{Sources: sources}).Pull(ctx, reg.Ref("base:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Image.Target.Digest.String() != d.String() {
		t.Fatalf("pulled %s, want %s", pulled.Image.Target.Digest, d)
	}
	rec.Reset()
	res, err := s.pusher(registry.Options{Sources: sources}).Push(ctx, pulled.Image.Target, []string{reg.Ref("derived:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mounted != 3 || res.Uploaded != 0 || rec.BlobBytes() != 0 {
		t.Errorf("push of a pulled image = %+v, registry got %d blob bytes; want 3 mounts, nothing uploaded", res, rec.BlobBytes())
	}
	checkRemote(t, s.cs, reg.Ref("derived:1"), pulled.Image.Target.Digest)
}

func TestPushRefusedMountUploads(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	s := newStore(t)
	img := randomImage(t, 1)
	desc := registrytest.StoreImage(t, s.cs, img)
	sources := &registry.MemorySources{}
	blobs := blobsOf(t, img)
	for _, b := range blobs {
		// Stale: the registry never had it there.
		sources.Add(digest.Digest(b.Digest.String()), reg.Host+"/gone")
		// Another registry: never tried.
		sources.Add(digest.Digest(b.Digest.String()), "other.example/app")
	}
	res, err := s.pusher(registry.Options{Sources: sources}).Push(ctx, desc, []string{reg.Ref("app:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mounted != 0 || res.Uploaded != 2 || res.UploadedBytes != sizeOf(blobs) {
		t.Errorf("push = %+v, want both blobs uploaded", res)
	}
	refused := rec.Count(func(r registrytest.Request) bool {
		return r.IsMount() && r.Query.Get("from") == "gone" && r.Status == http.StatusAccepted
	})
	others := rec.Count(func(r registrytest.Request) bool { return r.IsMount() && r.Query.Get("from") != "gone" })
	sessions := rec.Count(func(r registrytest.Request) bool { return r.Method == http.MethodPost })
	if refused != 2 || others != 0 || sessions != 2 {
		t.Errorf("registry saw %d refused mounts, %d other mounts, %d POSTs; want 2, 0, 2 (the refused mount's session is used)", refused, others, sessions)
	}
	checkRemote(t, s.cs, reg.Ref("app:1"), desc.Digest)
}

func TestPushRetriesServerErrors(t *testing.T) {
	registry.SetRetryBackoff(t, time.Millisecond)
	ctx := context.Background()
	img := randomImage(t, 1)
	layer := blobsOf(t, img)[1].Digest.String()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, registrytest.FailUploads(layer, http.StatusInternalServerError, 2), rec.Wrap())
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, img)
	evs := &events{}
	res, err := s.pusher(registry.Options{Progress: evs}).Push(ctx, desc, []string{reg.Ref("app:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retries != 2 || res.Uploaded != 2 {
		t.Errorf("push = %+v, want 2 retries and 2 blobs uploaded", res)
	}
	failed := rec.Count(func(r registrytest.Request) bool {
		return r.IsBlobData() && r.Status == http.StatusInternalServerError && r.Query.Get("digest") == layer
	})
	if failed != 2 {
		t.Errorf("registry answered 500 to %d uploads, want 2", failed)
	}
	if !strings.Contains(evs.logText(), "push blob "+layer+": attempt 2 failed, retrying") {
		t.Errorf("progress does not report the retries:\n%s", evs.logText())
	}
	checkRemote(t, s.cs, reg.Ref("app:1"), desc.Digest)
}

func TestPushFailsAfterBoundedRetries(t *testing.T) {
	registry.SetRetryBackoff(t, time.Millisecond)
	ctx := context.Background()
	img := randomImage(t, 1)
	layer := blobsOf(t, img)[1].Digest.String()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, registrytest.FailUploads(layer, http.StatusServiceUnavailable, -1), rec.Wrap())
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, img)
	_, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("app:1")})
	if err == nil || !strings.Contains(err.Error(), "push blob "+layer) || !strings.Contains(err.Error(), "5 attempts failed, the last with status 503 Service Unavailable") {
		t.Fatalf("push to a failing registry = %v, want an error naming blob %s, 5 attempts and status 503", err, layer)
	}
	t.Logf("always 503: %v", err)
	if n := rec.Count(func(r registrytest.Request) bool { return r.IsBlobData() && r.Query.Get("digest") == layer }); n != 5 {
		t.Errorf("%d upload attempts of the layer, want 5", n)
	}
	if n := rec.Count(func(r registrytest.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/")
	}); n != 0 {
		t.Errorf("%d manifests written after a failed blob", n)
	}
	if tagExists(t, reg.Ref("app:1")) {
		t.Error("tag written although a blob failed")
	}
}

func TestPushRetriesDroppedConnection(t *testing.T) {
	registry.SetRetryBackoff(t, time.Millisecond)
	ctx := context.Background()
	l, err := random.Layer(4<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img := appendLayer(t, randomImage(t, 0), l)
	ld, _ := l.Digest()
	size, _ := l.Size()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, registrytest.DropUploads(ld.String(), 1, 64<<10), rec.Wrap())
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, img)
	res, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("app:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retries != 1 || res.Uploaded != 2 {
		t.Errorf("push = %+v, want one retry", res)
	}
	var dropped []registrytest.Request
	for _, r := range rec.Requests() {
		if r.IsBlobData() && r.Status == 0 {
			dropped = append(dropped, r)
		}
	}
	if len(dropped) != 1 || dropped[0].Query.Get("digest") != ld.String() || dropped[0].BodyBytes < 64<<10 || dropped[0].BodyBytes >= size {
		t.Errorf("dropped uploads %+v, want one of %s cut after 64 KiB of %d bytes", dropped, ld, size)
	}
	checkRemote(t, s.cs, reg.Ref("app:1"), desc.Digest)
}

func TestPushSeveralNames(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	s := newStore(t)
	img := randomImage(t, 2)
	desc := registrytest.StoreImage(t, s.cs, img)
	blobs := blobsOf(t, img)
	names := []string{reg.Ref("app:1"), reg.Ref("app:latest"), reg.Ref("app@" + desc.Digest.String()), reg.Ref("mirror/app:1")}
	evs := &events{}
	res, err := s.pusher(registry.Options{Progress: evs}).Push(ctx, desc, names)
	if err != nil {
		t.Fatal(err)
	}
	// app gets the blobs uploaded once; mirror/app mounts them from app.
	if res.Uploaded != 3 || res.Mounted != 3 || res.UploadedBytes != sizeOf(blobs) || res.Manifests != 4 {
		t.Errorf("push = %+v, want 3 blobs uploaded, 3 mounted, 4 manifests", res)
	}
	if got := rec.BlobBytes(); got != sizeOf(blobs) {
		t.Errorf("registry received %d blob bytes, want %d (each blob once)", got, sizeOf(blobs))
	}
	want := []string{
		reg.Host + "/app:1@" + desc.Digest.String(),
		reg.Host + "/app:latest@" + desc.Digest.String(),
		reg.Host + "/app@" + desc.Digest.String(),
		reg.Host + "/mirror/app:1@" + desc.Digest.String(),
	}
	if fmt.Sprint(res.Refs) != fmt.Sprint(want) {
		t.Errorf("refs = %q, want %q", res.Refs, want)
	}
	for _, n := range names {
		checkRemote(t, s.cs, n, desc.Digest)
	}
	list := evs.list()
	if list[0].Name != "pushing "+strings.Join([]string{reg.Host + "/app:1", reg.Host + "/app:latest", reg.Host + "/app@" + desc.Digest.String(), reg.Host + "/mirror/app:1"}, ", ") {
		t.Errorf("vertex name %q", list[0].Name)
	}

	_, err = s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("app@sha256:" + strings.Repeat("0", 64))})
	if err == nil || !strings.Contains(err.Error(), "digest differs") {
		t.Errorf("push under another digest = %v", err)
	}
	if _, err := s.pusher(registry.Options{}).Push(ctx, desc, nil); err == nil {
		t.Error("push without a name succeeded")
	}
}

func TestPushIndexOfTwoPlatforms(t *testing.T) {
	ctx := context.Background()
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, rec.Wrap())
	amd, arm := randomImage(t, 1), randomImage(t, 2)
	armV8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := registrytest.Index(
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: amd},
		registrytest.PlatformImage{Platform: armV8, Image: arm},
	)
	s := newStore(t)
	desc := registrytest.StoreIndex(t, s.cs, idx)
	res, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("multi:1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 5 || res.Manifests != 3 || res.Target.MediaType != string(types.OCIImageIndex) {
		t.Errorf("push = %+v, want 5 blobs and 3 manifests", res)
	}
	// Children went up by digest before the index went up by tag.
	var order []string
	for _, r := range rec.Requests() {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/") {
			order = append(order, r.Path[strings.LastIndexByte(r.Path, '/')+1:])
		}
	}
	amdDigest, _ := amd.Digest()
	armDigest, _ := arm.Digest()
	if len(order) != 3 || order[2] != "1" || !strings.HasPrefix(order[0], "sha256:") || !strings.HasPrefix(order[1], "sha256:") {
		t.Errorf("manifest PUTs in order %q, want two children then tag 1", order)
	}
	r, _ := name.ParseReference(reg.Ref("multi:1"))
	got, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d.String() != desc.Digest.String() {
		t.Errorf("index digest %s, pushed %s", d, desc.Digest)
	}
	checkRemote(t, s.cs, reg.Ref("multi@"+amdDigest.String()), digest.Digest(amdDigest.String()))
	checkRemote(t, s.cs, reg.Ref("multi@"+armDigest.String()), digest.Digest(armDigest.String()))

	// Sparse: the store lacks the arm64 manifest, as after a pull for amd64.
	if err := s.cs.Delete(ctx, digest.Digest(armDigest.String())); err != nil {
		t.Fatal(err)
	}
	_, err = s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("multi:2")})
	if err == nil || !strings.Contains(err.Error(), "platform linux/arm64/v8") || !strings.Contains(err.Error(), armDigest.String()) {
		t.Fatalf("push of a sparse index = %v, want an error naming linux/arm64/v8", err)
	}
	t.Logf("sparse index: %v", err)
	if tagExists(t, reg.Ref("multi:2")) {
		t.Error("sparse index tagged")
	}
}

func TestPushMissingBlob(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t)
	s := newStore(t)
	img := randomImage(t, 1)
	desc := registrytest.StoreImage(t, s.cs, img)
	layer := digest.Digest(blobsOf(t, img)[1].Digest.String())
	if err := s.cs.Delete(ctx, layer); err != nil {
		t.Fatal(err)
	}
	_, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("app:1")})
	if err == nil || !strings.Contains(err.Error(), layer.String()) || !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("push with a missing layer = %v", err)
	}
	_, err = s.pusher(registry.Options{}).Push(ctx, ocispec.Descriptor{Digest: digest.FromString("nothing")}, []string{reg.Ref("app:1")})
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("push of a missing manifest = %v", err)
	}
}

func TestPushAuthenticationFailure(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, randomImage(t, 1))

	registrytest.DockerConfig(t, reg.Host, "alice", "wrong")
	_, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("private:1")})
	if !errors.Is(err, registry.ErrAuth) || !strings.Contains(err.Error(), "authentication failed for "+reg.Host+": ") || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("push with wrong credentials = %v, want ErrAuth naming %s with the registry's message", err, reg.Host)
	}
	t.Logf("wrong credentials: %v", err)

	registrytest.DockerConfig(t, reg.Host, "alice", "s3cret")
	if _, err := s.pusher(registry.Options{}).Push(ctx, desc, []string{reg.Ref("private:1")}); err != nil {
		t.Fatal(err)
	}
}

func TestPushProgressReportsBytes(t *testing.T) {
	registry.SetProgressInterval(t, time.Millisecond)
	ctx := context.Background()
	l, err := random.Layer(8<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	// A slow registry: the upload takes long enough for several reports.
	slow := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				r.Body = slowReader{r.Body}
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := registrytest.Start(t, slow)
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, appendLayer(t, randomImage(t, 0), l))
	evs := &events{}
	if _, err := s.pusher(registry.Options{Progress: evs}).Push(ctx, desc, []string{reg.Ref("app:1")}); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	if !strings.Contains(evs.logText(), d.String()+": ") || !strings.Contains(evs.logText(), " / 8.0 MiB\n") {
		t.Errorf("no byte counts for the layer:\n%s", evs.logText())
	}
	var out bytes.Buffer
	plain := progress.NewPlain(&out)
	for _, e := range evs.list() {
		plain.Emit(e)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) > 8 {
		lines = append(append(lines[:4:4], "..."), lines[len(lines)-4:]...)
	}
	t.Logf("plain progress:\n%s", strings.Join(lines, "\n"))
}

// slowReader delays every read of a request body a little.
type slowReader struct{ io.ReadCloser }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	return s.ReadCloser.Read(p)
}

func appendLayer(t testing.TB, img v1.Image, l v1.Layer) v1.Image {
	t.Helper()
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPushBearerTokenScopes(t *testing.T) {
	ctx := context.Background()
	ts := &registrytest.TokenServer{User: "alice", Password: "s3cret"}
	rec := &registrytest.Recorder{}
	reg := registrytest.Start(t, ts.Wrap(), rec.Wrap())
	s := newStore(t)
	img := randomImage(t, 2)
	desc := registrytest.StoreImage(t, s.cs, img)
	sources := &registry.MemorySources{}

	registrytest.DockerConfig(t, reg.Host, "alice", "wrong")
	_, err := s.pusher(registry.Options{Sources: sources}).Push(ctx, desc, []string{reg.Ref("first:1")})
	if !errors.Is(err, registry.ErrAuth) || !strings.Contains(err.Error(), "authentication failed for "+reg.Host+": ") || !strings.Contains(err.Error(), "invalid username or password") {
		t.Fatalf("push with a wrong password = %v, want ErrAuth with the token server's message", err)
	}
	t.Logf("wrong password: %v", err)

	registrytest.DockerConfig(t, reg.Host, "alice", "s3cret")
	p := s.pusher(registry.Options{Sources: sources})
	if _, err := p.Push(ctx, desc, []string{reg.Ref("first:1")}); err != nil {
		t.Fatal(err)
	}
	asked := ts.Asked()
	if got := fmt.Sprint(asked[len(asked)-1]); got != "[repository:first:push,pull]" {
		t.Errorf("first push asked for scopes %s", got)
	}
	rec.Reset()
	res, err := p.Push(ctx, desc, []string{reg.Ref("second:1")})
	if err != nil {
		t.Fatal(err)
	}
	asked = ts.Asked()
	if got := fmt.Sprint(asked[len(asked)-1]); got != "[repository:second:push,pull repository:first:pull]" {
		t.Errorf("second push asked for scopes %s, want push on second and pull on first", got)
	}
	// The token server grants only what is asked: without pull on first,
	// the registry would ignore the mounts.
	if res.Mounted != 3 || res.Uploaded != 0 || rec.BlobBytes() != 0 {
		t.Errorf("push to second = %+v, registry got %d blob bytes; want 3 mounts", res, rec.BlobBytes())
	}
	r, _ := name.ParseReference(reg.Ref("second:1"))
	d, err := remote.Head(r, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil || d.Digest.String() != desc.Digest.String() {
		t.Errorf("second:1 = %v, %v; want %s", d, err, desc.Digest)
	}
}
