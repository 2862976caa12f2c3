package registry_test

import (
	"context"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/registrytest"
)

func TestMemorySources(t *testing.T) {
	var s registry.MemorySources
	d := digest.FromString("blob")
	if got := s.Sources(d); len(got) != 0 {
		t.Fatalf("empty sources = %q", got)
	}
	s.Add(d, "h/a")
	s.Add(d, "h/b")
	s.Add(d, "h/a")
	if got := s.Sources(d); fmt.Sprint(got) != "[h/a h/b]" {
		t.Fatalf("sources = %q, want most recent first without repeats", got)
	}
	for i := range 20 {
		s.Add(d, fmt.Sprintf("h/r%d", i))
	}
	if got := s.Sources(d); len(got) != 8 || got[0] != "h/r19" {
		t.Fatalf("sources after 22 adds = %q, want the 8 most recent", got)
	}
}

func TestPullRecordsSources(t *testing.T) {
	reg := registrytest.Start(t)
	img := randomImage(t, 2)
	reg.Push(t, "base:1", img)
	s := newStore(t)
	sources := &registry.MemorySources{}
	if _, err := s.puller(registry.Options{Sources: sources}).Pull(context.Background(), reg.Ref("base:1"), linuxAMD64); err != nil {
		t.Fatal(err)
	}
	for _, b := range blobsOf(t, img) {
		if got := sources.Sources(digest.Digest(b.Digest.String())); fmt.Sprint(got) != "["+reg.Host+"/base]" {
			t.Errorf("sources of %s = %q, want [%s/base]", b.Digest, got, reg.Host)
		}
	}
	// Without Sources a pull records nothing and does not fail.
	if _, err := s.puller(registry.Options{}).Pull(context.Background(), reg.Ref("base:1"), linuxAMD64); err != nil {
		t.Fatal(err)
	}
}

// blobsOf lists the config and layer descriptors of img.
func blobsOf(t testing.TB, img v1.Image) []v1.Descriptor {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return append([]v1.Descriptor{m.Config}, m.Layers...)
}
