package exporter

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/metadata"
)

// FuzzLoad feeds arbitrary archives to Load: it must fail cleanly or load
// images whose blobs are all in the store, and never write outside it.
func FuzzLoad(f *testing.F) {
	seed := func(exp func(*bytes.Buffer) Exporter) {
		dir := f.TempDir()
		cs, _ := content.Open(dir)
		desc := testImage(f, cs, "x", baseFiles)
		var buf bytes.Buffer
		if _, err := exp(&buf).Export(context.Background(), Source{Content: cs, Manifest: desc, Names: []string{"docker.io/library/a:1"}}); err == nil {
			f.Add(buf.Bytes())
		}
	}
	seed(func(b *bytes.Buffer) Exporter { return OCIArchive{W: b} })
	seed(func(b *bytes.Buffer) Exporter { return DockerArchive{W: b} })
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		cs, err := content.Open(filepath.Join(root, "content"))
		if err != nil {
			t.Fatal(err)
		}
		db, err := metadata.Open(filepath.Join(root, "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := Load(context.Background(), bytes.NewReader(b), cs, images.NewStore(db))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "load: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		for _, img := range imgs {
			if _, err := closure(context.Background(), cs, img.Target); err != nil {
				t.Fatalf("loaded image %s is incomplete: %v", img.Target.Digest, err)
			}
		}
	})
}
