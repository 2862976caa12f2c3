package exporter

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/metadata"
)

// testFile is one file of a test layer.
type testFile struct {
	name string
	mode int64
	data string
}

// layerTar is a deterministic tar of files (directories for names ending in /).
func layerTar(t testing.TB, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}
		if f.name[len(f.name)-1] == '/' {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func putJSON(t testing.TB, cs *content.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cs.Put(context.Background(), mediaType, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testImage stores an image with one gzip layer per element of layers, a
// config naming cmd, and an OCI manifest; it returns the manifest descriptor.
func testImage(t testing.TB, cs *content.Store, cmd string, layers ...[]testFile) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	cfg := ocispec.Image{
		Created:  &time.Time{},
		Platform: images.DefaultPlatform(ocispec.Platform{}),
		Config:   ocispec.ImageConfig{Cmd: []string{cmd}, Env: []string{"PATH=/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	var ls []ocispec.Descriptor
	for _, files := range layers {
		raw := layerTar(t, files)
		gz := gzipBytes(t, raw)
		d, err := cs.Put(ctx, ocispec.MediaTypeImageLayerGzip, gz)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: "test layer"})
	}
	return putJSON(t, cs, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    putJSON(t, cs, ocispec.MediaTypeImageConfig, cfg),
		Layers:    ls,
	})
}

var (
	baseFiles = []testFile{
		{name: "bin/", mode: 0o755},
		{name: "bin/hello", mode: 0o755, data: "#!/bin/sh\necho hello\n"},
		{name: "etc/", mode: 0o755},
		{name: "etc/motd", mode: 0o644, data: "welcome\n"},
	}
	topFiles = []testFile{
		{name: "etc/", mode: 0o755},
		{name: "etc/motd", mode: 0o600, data: "changed\n"},
		{name: "etc/.wh.gone", mode: 0o644},
	}
)

func newContent(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func newImages(t *testing.T) *images.Store {
	t.Helper()
	db, err := metadata.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	return images.NewStore(db)
}

func mustNormalize(t *testing.T, ref string) string {
	t.Helper()
	n, err := images.Normalize(ref)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// untar extracts an archive made by this package into dir.
func untar(t *testing.T, archive []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if hdr.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		b, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameBlobs fails unless every blob of desc's closure in a is in b with the
// same bytes.
func sameBlobs(t *testing.T, a, b *content.Store, desc ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	ds, err := closure(ctx, a, desc)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		x, err := a.ReadBlob(ctx, d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.ReadBlob(ctx, d.Digest)
		if err != nil || !bytes.Equal(x, y) {
			t.Fatalf("blob %s differs after round trip: %v", d.Digest, err)
		}
	}
}

func hashOf(t *testing.T, d ocispec.Descriptor) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
