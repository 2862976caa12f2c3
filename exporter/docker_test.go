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

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/images"
)

// archiveFiles reads a tar into name -> bytes (regular files only).
func archiveFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			out[hdr.Name], _ = io.ReadAll(tr)
		}
	}
}

// tarWithData writes a tar of hdrs in order, with file contents from data.
func tarWithData(t *testing.T, hdrs []tar.Header, data map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		d := data[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(d))
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(d)
	}
	tw.Close()
	return buf.Bytes()
}

func TestDockerArchive(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	names := []string{mustNormalize(t, "app:v1"), mustNormalize(t, "localhost:5000/x/app:v2"), mustNormalize(t, "app@sha256:"+strings.Repeat("a", 64))}
	path := filepath.Join(t.TempDir(), "img.tar")
	rep, err := DockerArchive{Path: path}.Export(ctx, Source{Content: cs, Manifest: desc, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if rep.Size != int64(len(b)) || rep.Digest != desc.Digest {
		t.Fatalf("report = %+v, file %d bytes", rep, len(b))
	}
	var again bytes.Buffer
	if _, err := (DockerArchive{W: &again}).Export(ctx, Source{Content: cs, Manifest: desc, Names: names}); err != nil || !bytes.Equal(again.Bytes(), b) {
		t.Fatalf("second export differs (%v)", err)
	}

	files := archiveFiles(t, b)
	var mj []DockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &mj); err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.Unmarshal(files[blobPath(desc.Digest)], &m)
	want := []DockerManifestEntry{{
		Config:   blobPath(m.Config.Digest),
		RepoTags: []string{"app:v1", "localhost:5000/x/app:v2"},
		Layers:   []string{blobPath(m.Layers[0].Digest), blobPath(m.Layers[1].Digest)},
	}}
	if diff := cmp.Diff(want, mj); diff != "" {
		t.Fatalf("manifest.json (-want +got):\n%s", diff)
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Fatal("no oci-layout in docker archive")
	}

	t.Run("ggcr", func(t *testing.T) {
		for _, tag := range []string{"app:v1", "localhost:5000/x/app:v2"} {
			tg, err := name.NewTag(tag)
			if err != nil {
				t.Fatal(err)
			}
			img, err := tarball.ImageFromPath(path, &tg)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Fatalf("validate.Image(%s): %v", tag, err)
			}
			cfg, _ := img.RawConfigFile()
			if digest.FromBytes(cfg) != m.Config.Digest {
				t.Fatalf("config digest via ggcr = %s", digest.FromBytes(cfg))
			}
		}
	})
	t.Run("skopeo", func(t *testing.T) {
		needTool(t, "skopeo")
		out := run(t, "skopeo", "inspect", "--config", "docker-archive:"+path+":app:v1")
		if !bytes.Contains(out, []byte(`"/bin/hello"`)) {
			t.Fatalf("skopeo inspect --config = %s", out)
		}
		var info struct{ Layers []string }
		out = run(t, "skopeo", "inspect", "docker-archive:"+path)
		if err := json.Unmarshal(out, &info); err != nil || len(info.Layers) != 2 {
			t.Fatalf("skopeo inspect = %s (%v)", out, err)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		cs2, is2 := newContent(t), newImages(t)
		got, err := Load(ctx, bytes.NewReader(b), cs2, is2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("Load = %+v", got)
		}
		for i, img := range got {
			if img.Name != names[i] || !cmp.Equal(img.Target, desc) {
				t.Errorf("image %d = %+v, want %s -> %s", i, img, names[i], desc.Digest)
			}
		}
		sameBlobs(t, cs, cs2, desc)
	})
}

// dockerOnly drops the OCI files from a docker archive, as docker before 25
// wrote it.
func dockerOnly(t *testing.T, b []byte) []byte {
	t.Helper()
	files := archiveFiles(t, b)
	var hdrs []tar.Header
	for n := range files {
		if n == "index.json" || n == "oci-layout" {
			delete(files, n)
			continue
		}
		hdrs = append(hdrs, tar.Header{Name: n})
	}
	return tarWithData(t, hdrs, files)
}

func TestLoadDockerArchiveWithoutIndex(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "/bin/hello", baseFiles, topFiles)
	var buf bytes.Buffer
	if _, err := (DockerArchive{W: &buf}).Export(ctx, Source{Content: cs, Manifest: desc, Names: []string{mustNormalize(t, "app:v1")}}); err != nil {
		t.Fatal(err)
	}
	cs2, is2 := newContent(t), newImages(t)
	got, err := Load(ctx, bytes.NewReader(gzipBytes(t, dockerOnly(t, buf.Bytes()))), cs2, is2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "docker.io/library/app:v1" {
		t.Fatalf("Load = %+v", got)
	}
	// The manifest is rebuilt with the same config and layers: here the
	// original already used those media types, so even its digest matches.
	want, _ := images.Resolve(ctx, cs, desc, ocispec.Platform{})
	r, err := images.Resolve(ctx, cs2, got[0].Target, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Manifest, r.Manifest); diff != "" {
		t.Fatalf("rebuilt manifest (-want +got):\n%s", diff)
	}
	if got[0].Target.Digest != desc.Digest {
		t.Fatalf("rebuilt manifest digest %s, want %s", got[0].Target.Digest, desc.Digest)
	}
}

// legacyArchive is a docker archive as docker before 25 wrote it: a config at
// <hex>.json, uncompressed layers at <id>/layer.tar, a repeated layer as a
// symlink.
func legacyArchive(t *testing.T, diffIDs []digest.Digest, layerTar []byte, cfgMutate func(*ocispec.Image)) ([]byte, digest.Digest) {
	t.Helper()
	cfg := ocispec.Image{Platform: images.DefaultPlatform(ocispec.Platform{}), RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	if cfgMutate != nil {
		cfgMutate(&cfg)
	}
	cb, _ := json.Marshal(cfg)
	cd := digest.FromBytes(cb)
	mj, _ := json.Marshal([]DockerManifestEntry{{Config: cd.Encoded() + ".json", RepoTags: []string{"legacy:1", "legacy:2"}, Layers: []string{"aaa/layer.tar", "bbb/layer.tar"}}})
	return tarWithData(t, []tar.Header{
		{Name: "aaa/", Typeflag: tar.TypeDir},
		{Name: "aaa/layer.tar"},
		{Name: "bbb/", Typeflag: tar.TypeDir},
		{Name: "bbb/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"},
		{Name: cd.Encoded() + ".json"},
		{Name: "manifest.json"},
	}, map[string][]byte{"aaa/layer.tar": layerTar, cd.Encoded() + ".json": cb, "manifest.json": mj}), cd
}

func TestLoadLegacyDockerArchive(t *testing.T) {
	ctx := context.Background()
	raw := layerTar(t, baseFiles)
	diff := digest.FromBytes(raw)
	archive, cfgDigest := legacyArchive(t, []digest.Digest{diff, diff}, raw, nil)
	cs, is := newContent(t), newImages(t)
	got, err := Load(ctx, bytes.NewReader(archive), cs, is)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "docker.io/library/legacy:1" || got[1].Name != "docker.io/library/legacy:2" || got[0].Target.Digest != got[1].Target.Digest {
		t.Fatalf("Load = %+v", got)
	}
	r, err := images.Resolve(ctx, cs, got[0].Target, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	wantLayer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diff, Size: int64(len(raw))}
	if r.Manifest.Config.Digest != cfgDigest || !cmp.Equal(r.Manifest.Layers, []ocispec.Descriptor{wantLayer, wantLayer}) {
		t.Fatalf("rebuilt manifest = %+v", r.Manifest)
	}
	// The loaded image exports as a valid docker archive again.
	var buf bytes.Buffer
	if err := Save(ctx, cs, got, &buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "again.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	tg, _ := name.NewTag("legacy:2")
	img, err := tarball.ImageFromPath(p, &tg)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}

	// A layer that does not match its diff_id is rejected.
	bad, _ := legacyArchive(t, []digest.Digest{diff, digest.FromString("other")}, raw, nil)
	if _, err := Load(ctx, bytes.NewReader(bad), newContent(t), nil); err == nil || !strings.Contains(err.Error(), "does not match diff_id") {
		t.Fatalf("Load with wrong diff_id = %v", err)
	}
	short, _ := legacyArchive(t, []digest.Digest{diff}, raw, nil)
	if _, err := Load(ctx, bytes.NewReader(short), newContent(t), nil); err == nil || !strings.Contains(err.Error(), "1 diff_ids for 2 layers") {
		t.Fatalf("Load with missing diff_id = %v", err)
	}
}

func TestLoadGGCRTarball(t *testing.T) {
	ctx := context.Background()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := name.NewTag("registry.example:5000/rand:x")
	var buf bytes.Buffer
	if err := tarball.Write(tg, img, &buf); err != nil {
		t.Fatal(err)
	}
	cs, is := newContent(t), newImages(t)
	got, err := Load(ctx, &buf, cs, is)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "registry.example:5000/rand:x" {
		t.Fatalf("Load = %+v", got)
	}
	r, err := images.Resolve(ctx, cs, got[0].Target, ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	layers, _ := img.Layers()
	if r.Manifest.Config.Digest.String() != cfgName.String() || len(r.Manifest.Layers) != len(layers) {
		t.Fatalf("loaded manifest = %+v", r.Manifest)
	}
	for i, l := range layers {
		d, _ := l.Digest()
		if r.Manifest.Layers[i].Digest.String() != d.String() || r.Manifest.Layers[i].MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("layer %d = %+v, want %s gzip", i, r.Manifest.Layers[i], d)
		}
	}
}

func TestSaveTwoImages(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	a := testImage(t, cs, "a", baseFiles)
	b := testImage(t, cs, "b", baseFiles, topFiles)
	imgs := []images.Image{
		{Name: mustNormalize(t, "a:1"), Target: a},
		{Name: mustNormalize(t, "b:1"), Target: b},
		{Name: mustNormalize(t, "a:latest"), Target: a},
	}
	var buf bytes.Buffer
	if err := Save(ctx, cs, imgs, &buf); err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, buf.Bytes())
	var mj []DockerManifestEntry
	json.Unmarshal(files["manifest.json"], &mj)
	if len(mj) != 2 || !cmp.Equal(mj[0].RepoTags, []string{"a:1", "a:latest"}) || !cmp.Equal(mj[1].RepoTags, []string{"b:1"}) {
		t.Fatalf("manifest.json = %s", files["manifest.json"])
	}
	blobs := 0
	for n := range files {
		if strings.HasPrefix(n, "blobs/") {
			blobs++
		}
	}
	if blobs != 6 { // 2 manifests, 2 configs, 2 distinct layers (the base layer is shared)
		t.Fatalf("blobs in archive = %d", blobs)
	}
	path := filepath.Join(t.TempDir(), "two.tar")
	os.WriteFile(path, buf.Bytes(), 0o644)
	for tag, want := range map[string]int{"a:1": 1, "a:latest": 1, "b:1": 2} {
		tg, _ := name.NewTag(tag)
		img, err := tarball.ImageFromPath(path, &tg)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(img); err != nil {
			t.Fatalf("validate %s: %v", tag, err)
		}
		if ls, _ := img.Layers(); len(ls) != want {
			t.Fatalf("%s has %d layers, want %d", tag, len(ls), want)
		}
	}
	t.Run("skopeo", func(t *testing.T) {
		needTool(t, "skopeo")
		var info struct{ Layers []string }
		out := run(t, "skopeo", "inspect", "docker-archive:"+path+":b:1")
		if err := json.Unmarshal(out, &info); err != nil || len(info.Layers) != 2 {
			t.Fatalf("skopeo inspect b:1 = %s (%v)", out, err)
		}
	})
	is := newImages(t)
	got, err := Load(ctx, bytes.NewReader(buf.Bytes()), newContent(t), is)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := is.List(ctx)
	if len(got) != 3 || len(list) != 3 || list[1].Target.Digest != a.Digest || list[2].Target.Digest != b.Digest {
		t.Fatalf("Load = %+v, store = %+v", got, list)
	}
	if err := Save(ctx, cs, nil, io.Discard); err == nil {
		t.Fatal("Save of no images succeeded")
	}
}
