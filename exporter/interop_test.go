package exporter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/images"
)

// TestLoadSkopeoArchives loads archives written by skopeo from ours: the
// image must come back with the same config and layer contents.
func TestLoadSkopeoArchives(t *testing.T) {
	needTool(t, "skopeo")
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.tar")
	if _, err := (OCIArchive{Path: src}).Export(ctx, Source{Content: cs, Manifest: desc, Names: []string{mustNormalize(t, "app:v1")}}); err != nil {
		t.Fatal(err)
	}
	want, err := images.Resolve(ctx, cs, desc, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ transport, file, ref, wantName string }{
		{"oci-archive", "oci.tar", "foo/bar:1", "docker.io/foo/bar:1"},
		{"docker-archive", "docker.tar", "example.com/app:v3", "example.com/app:v3"},
	}
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			run(t, "skopeo", "copy", "--quiet", "oci-archive:"+src, tt.transport+":"+path+":"+tt.ref)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cs2 := newContent(t)
			got, err := Load(ctx, f, cs2, newImages(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Name != tt.wantName {
				t.Fatalf("Load = %+v", got)
			}
			r, err := images.Resolve(ctx, cs2, got[0].Target, ocispec.Platform{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Config.RootFS, r.Config.RootFS); diff != "" {
				t.Fatalf("rootfs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.Config.Config, r.Config.Config); diff != "" {
				t.Fatalf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadZstdCompressedArchive(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "x", baseFiles)
	var buf bytes.Buffer
	if _, err := (DockerArchive{W: &buf}).Export(ctx, Source{Content: cs, Manifest: desc, Names: []string{mustNormalize(t, "z:1")}}); err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	zw.Write(buf.Bytes())
	zw.Close()
	got, err := Load(ctx, &zbuf, newContent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "docker.io/library/z:1" || got[0].Target.Digest != desc.Digest {
		t.Fatalf("Load = %+v", got)
	}
}
