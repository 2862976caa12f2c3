package registrytest

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/content"
)

// StoreImage writes img's config, layers and manifest into cs, as a build
// or a pull leaves them, and returns the manifest's descriptor.
func StoreImage(t testing.TB, cs *content.Store, img v1.Image) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Put(ctx, "", cfg); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		err = cs.WriteBlob(ctx, rc, size, digest.Digest(d.String()))
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	desc, err := cs.Put(ctx, string(mt), raw)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// StoreIndex writes idx and every image it names into cs and returns the
// index's descriptor.
func StoreIndex(t testing.TB, cs *content.Store, idx v1.ImageIndex) ocispec.Descriptor {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		StoreImage(t, cs, img)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	desc, err := cs.Put(context.Background(), string(mt), raw)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}
