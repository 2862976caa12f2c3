package registry_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/registrytest"
)

// TestPushToDistribution pushes to the distribution registry that Debian
// ships, which checks what the in-process one does not: a manifest's blobs
// must be in its repository, an index's manifests too.
func TestPushToDistribution(t *testing.T) {
	host := registrytest.StartDistribution(t, registrytest.DistributionOptions{}).Host
	ctx := context.Background()
	s := newStore(t)
	l, err := random.Layer(1<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img := appendLayer(t, randomImage(t, 2), l)
	desc := registrytest.StoreImage(t, s.cs, img)
	blobs := blobsOf(t, img)
	sources := &registry.MemorySources{}
	p := s.pusher(registry.Options{Sources: sources})
	ref := host + "/strata/app:1"

	res, err := p.Push(ctx, desc, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 4 || res.UploadedBytes != sizeOf(blobs) || res.Manifests != 1 {
		t.Errorf("first push = %+v, want 4 blobs uploaded (%d bytes)", res, sizeOf(blobs))
	}
	checkRemote(t, s.cs, ref, desc.Digest)

	again, err := p.Push(ctx, desc, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	if again.Uploaded != 0 || again.UploadedBytes != 0 || again.Skipped != 4 {
		t.Errorf("second push = %+v, want nothing uploaded", again)
	}

	other, err := p.Push(ctx, desc, []string{host + "/strata/other:1"})
	if err != nil {
		t.Fatal(err)
	}
	if other.Mounted != 4 || other.Uploaded != 0 {
		t.Errorf("push to another repository = %+v, want 4 blobs mounted", other)
	}
	checkRemote(t, s.cs, host+"/strata/other:1", desc.Digest)

	idx := registrytest.Index(
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: img},
		registrytest.PlatformImage{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Image: randomImage(t, 1)},
	)
	idxDesc := registrytest.StoreIndex(t, s.cs, idx)
	multi, err := p.Push(ctx, idxDesc, []string{host + "/strata/multi:1"})
	if err != nil {
		t.Fatal(err)
	}
	if multi.Mounted != 4 || multi.Uploaded != 2 || multi.Manifests != 3 {
		t.Errorf("index push = %+v, want amd64's 4 blobs mounted, arm64's 2 uploaded, 3 manifests", multi)
	}

	t.Run("skopeo", func(t *testing.T) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			t.Skip("skopeo not installed: the digest is not checked by a second client")
		}
		for ref, want := range map[string]string{ref: desc.Digest.String(), host + "/strata/multi:1": idxDesc.Digest.String()} {
			out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+ref).Output()
			if err != nil {
				t.Fatalf("skopeo inspect --raw %s: %v", ref, err)
			}
			if got := digest.FromBytes(out).String(); got != want {
				t.Errorf("skopeo reads a manifest of digest %s from %s, pushed %s", got, ref, want)
			}
		}
		out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v", ref, err)
		}
		var info struct{ Digest string }
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		if info.Digest != desc.Digest.String() {
			t.Errorf("skopeo inspect %s: digest %s, pushed %s", ref, info.Digest, desc.Digest)
		}
	})
}
