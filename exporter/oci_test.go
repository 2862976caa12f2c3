package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestOCIArchiveDeterministicAndWellFormed(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	src := Source{Content: cs, Manifest: desc, Names: []string{mustNormalize(t, "example.com/app:v1")}}

	path := filepath.Join(t.TempDir(), "img.tar")
	rep, err := OCIArchive{Path: path}.Export(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Digest != desc.Digest || rep.Path != path || rep.Size != int64(len(onDisk)) {
		t.Fatalf("report = %+v, file size %d", rep, len(onDisk))
	}
	var buf bytes.Buffer
	rep2, err := OCIArchive{W: &buf}.Export(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), onDisk) || rep2.Size != int64(buf.Len()) || rep2.Path != "-" {
		t.Fatalf("second export differs: %d vs %d bytes, report %+v", buf.Len(), len(onDisk), rep2)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left next to the archive: %v", ents)
	}

	// Entries: sorted, parents first, normalized headers.
	tr := tar.NewReader(bytes.NewReader(onDisk))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("entry %s: uid %d gid %d uname %q mtime %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.ModTime)
		}
		names = append(names, hdr.Name)
	}
	if names[0] != "blobs/" || names[1] != "blobs/sha256/" || names[len(names)-2] != "index.json" || names[len(names)-1] != "oci-layout" {
		t.Errorf("entry order = %v", names)
	}
	if len(names) != 2+4+2 { // dirs, manifest+config+2 layers, index+layout
		t.Errorf("entries = %v", names)
	}

	// index.json names the image the way BuildKit does.
	dir := t.TempDir()
	untar(t, onDisk, dir)
	var idx ocispec.Index
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{AnnotationImageName: "example.com/app:v1", AnnotationRefName: "v1"}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != desc.Digest || !cmp.Equal(idx.Manifests[0].Annotations, want) {
		t.Fatalf("index.json = %s", b)
	}

	// go-containerregistry reads and validates it.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(hashOf(t, desc))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
}

func TestOCIArchiveSkopeoAndUmoci(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	path := filepath.Join(t.TempDir(), "img.tar")
	_, err := OCIArchive{Path: path}.Export(ctx, Source{Content: cs, Manifest: desc, Names: []string{mustNormalize(t, "app:v1")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("skopeo", func(t *testing.T) {
		needTool(t, "skopeo")
		var got struct {
			Digest string
			Layers []string
			Env    []string
		}
		out := run(t, "skopeo", "inspect", "oci-archive:"+path)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got.Digest != desc.Digest.String() || len(got.Layers) != 2 || !cmp.Equal(got.Env, []string{"PATH=/bin"}) {
			t.Fatalf("skopeo inspect = %s", out)
		}
	})
	t.Run("umoci", func(t *testing.T) {
		needTool(t, "umoci")
		if os.Geteuid() != 0 {
			t.Skip("umoci unpack without --rootless needs root")
		}
		b, _ := os.ReadFile(path)
		layoutDir := filepath.Join(t.TempDir(), "layout")
		untar(t, b, layoutDir)
		bundle := filepath.Join(t.TempDir(), "bundle")
		run(t, "umoci", "unpack", "--image", layoutDir+":v1", bundle)
		rootfs := filepath.Join(bundle, "rootfs")
		for name, want := range map[string]struct {
			data string
			mode os.FileMode
		}{
			"bin/hello": {"#!/bin/sh\necho hello\n", 0o755},
			"etc/motd":  {"changed\n", 0o600},
		} {
			fi, err := os.Stat(filepath.Join(rootfs, name))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(rootfs, name))
			if string(got) != want.data || fi.Mode().Perm() != want.mode {
				t.Errorf("%s = %q mode %v, want %q %v", name, got, fi.Mode().Perm(), want.data, want.mode)
			}
		}
	})
}

func TestOCILayoutDirMerges(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	a := testImage(t, cs, "a", baseFiles)
	b := testImage(t, cs, "b", baseFiles, topFiles)
	dir := filepath.Join(t.TempDir(), "out")
	rep, err := OCILayout{Dir: dir}.Export(ctx, Source{Content: cs, Manifest: a, Names: []string{mustNormalize(t, "x:1"), mustNormalize(t, "x:2")}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Path != dir || rep.Size == 0 {
		t.Fatalf("report = %+v", rep)
	}
	// Retag x:2 to b; x:1 stays on a; the shared layer is not rewritten.
	rep, err = OCILayout{Dir: dir}.Export(ctx, Source{Content: cs, Manifest: b, Names: []string{mustNormalize(t, "x:2")}})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	m, _ := idx.IndexManifest()
	got := map[string]string{}
	for _, d := range m.Manifests {
		got[d.Annotations[AnnotationImageName]] = d.Digest.String()
	}
	want := map[string]string{"docker.io/library/x:1": a.Digest.String(), "docker.io/library/x:2": b.Digest.String()}
	if !cmp.Equal(got, want) {
		t.Fatalf("index names = %v, want %v", got, want)
	}
}

func TestOCIArchiveRoundTrip(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	names := []string{mustNormalize(t, "app:v1"), mustNormalize(t, "localhost:5000/app:v2")}
	var buf bytes.Buffer
	if _, err := (OCIArchive{W: &buf}).Export(ctx, Source{Content: cs, Manifest: desc, Names: names}); err != nil {
		t.Fatal(err)
	}
	cs2, is2 := newContent(t), newImages(t)
	got, err := Load(ctx, bytes.NewReader(buf.Bytes()), cs2, is2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != names[0] || got[1].Name != names[1] || got[0].Target.Digest != desc.Digest || !cmp.Equal(got[0].Target, desc) {
		t.Fatalf("Load = %+v", got)
	}
	sameBlobs(t, cs, cs2, desc)
	for _, n := range names {
		img, err := is2.Get(ctx, n)
		if err != nil || img.Target.Digest != desc.Digest {
			t.Fatalf("tag %s after load = %+v, %v", n, img, err)
		}
	}
	// The same archive, unnamed and gzip-compressed.
	buf.Reset()
	if _, err := (OCIArchive{W: &buf}).Export(ctx, Source{Content: cs, Manifest: desc}); err != nil {
		t.Fatal(err)
	}
	got, err = Load(ctx, bytes.NewReader(gzipBytes(t, buf.Bytes())), newContent(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "" || got[0].Target.Digest != desc.Digest {
		t.Fatalf("Load unnamed = %+v", got)
	}
}

func TestImageStoreExporter(t *testing.T) {
	ctx := context.Background()
	cs, is := newContent(t), newImages(t)
	desc := testImage(t, cs, "x", baseFiles)
	desc.Annotations = map[string]string{"k": "v"}
	rep, err := ImageStore{}.Export(ctx, Source{Content: cs, Images: is, Manifest: desc, Names: []string{mustNormalize(t, "a"), mustNormalize(t, "b:2")}})
	if err != nil || rep.Digest != desc.Digest || rep.Size != 0 || rep.Path != "" {
		t.Fatalf("Export = %+v, %v", rep, err)
	}
	list, _ := is.List(ctx)
	if len(list) != 2 || list[0].Name != "docker.io/library/a:latest" || list[1].Target.Digest != desc.Digest || list[1].Target.Annotations != nil {
		t.Fatalf("images = %+v", list)
	}
	// An image whose layer is missing is not tagged.
	missing := testImage(t, cs, "y", topFiles)
	var m ocispec.Manifest
	b, _ := cs.ReadBlob(ctx, missing.Digest)
	json.Unmarshal(b, &m)
	cs.Delete(ctx, m.Layers[0].Digest)
	_, err = ImageStore{}.Export(ctx, Source{Content: cs, Images: is, Manifest: missing, Names: []string{mustNormalize(t, "c")}})
	if err == nil || !strings.Contains(err.Error(), m.Layers[0].Digest.String()) {
		t.Fatalf("export with missing layer = %v", err)
	}
	if _, err := is.Get(ctx, "c"); err == nil {
		t.Fatal("image with missing layer was tagged")
	}
}
