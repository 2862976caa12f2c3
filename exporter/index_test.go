package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/images"
)

// TestExportIndex exports a two-platform index whose second platform's
// manifest is not in the store, as after pulling one platform.
func TestExportIndex(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	here := testImage(t, cs, "here", baseFiles)
	here.Platform = &ocispec.Platform{OS: "linux", Architecture: images.DefaultPlatform(ocispec.Platform{}).Architecture}
	other := testImage(t, newContent(t), "other", topFiles)
	other.Platform = &ocispec.Platform{OS: "linux", Architecture: "s390x"}
	idx := putJSON(t, cs, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{here, other},
	})
	names := []string{mustNormalize(t, "multi:1")}

	var oci bytes.Buffer
	if _, err := (OCIArchive{W: &oci}).Export(ctx, Source{Content: cs, Manifest: idx, Names: names}); err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, oci.Bytes())
	if _, ok := files[blobPath(other.Digest)]; ok {
		t.Fatal("archive holds a manifest the store lacks")
	}
	if _, ok := files[blobPath(here.Digest)]; !ok || len(files) != 2+4 { // layout files + index, manifest, config, layer
		t.Fatalf("archive files: %d", len(files))
	}
	got, err := Load(ctx, bytes.NewReader(oci.Bytes()), newContent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Target.Digest != idx.Digest || got[0].Target.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Load = %+v", got)
	}

	// A docker archive holds the runtime platform's manifest.
	var docker bytes.Buffer
	if _, err := (DockerArchive{W: &docker}).Export(ctx, Source{Content: cs, Manifest: idx, Names: names}); err != nil {
		t.Fatal(err)
	}
	var mj []DockerManifestEntry
	json.Unmarshal(archiveFiles(t, docker.Bytes())["manifest.json"], &mj)
	var m ocispec.Manifest
	b, _ := cs.ReadBlob(ctx, here.Digest)
	json.Unmarshal(b, &m)
	if len(mj) != 1 || mj[0].Config != blobPath(m.Config.Digest) || mj[0].RepoTags[0] != "multi:1" {
		t.Fatalf("manifest.json = %+v", mj)
	}
	got, err = Load(ctx, bytes.NewReader(docker.Bytes()), newContent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Target.Digest != here.Digest {
		t.Fatalf("Load docker = %+v", got)
	}
}
