package builder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/store"
)

// -o type=local writes the image's filesystem into a directory, whiteouts
// applied; -o type=tar writes it as one tar, the same bytes every time; and
// that tar imported again gives back the same files.
func TestExportLocalDirAndRootfsTar(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nRUN mkdir -p /out && echo artifact > /out/a && chmod 0751 /out/a && rm /bin/vi\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	out := t.TempDir()
	local := filepath.Join(out, "rootfs")
	tarPath := filepath.Join(out, "rootfs.tar")
	res, _ := e.mustBuild(dir, builder.Options{Exports: []exporter.Exporter{
		exporter.LocalDir{Dir: local},
		exporter.RootfsTar{Path: tarPath},
	}})

	b, err := os.ReadFile(filepath.Join(local, "out", "a"))
	if err != nil || string(b) != "artifact\n" {
		t.Fatalf("local /out/a = %q, %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(local, "out", "a")); fi == nil || fi.Mode().Perm() != 0o751 {
		t.Errorf("local /out/a mode %v, want 0751", fi)
	}
	if _, err := os.Lstat(filepath.Join(local, "bin", "vi")); err == nil {
		t.Error("a file the RUN deleted is in the local export")
	}
	if _, err := os.Lstat(filepath.Join(local, "bin", "sh")); err != nil {
		t.Errorf("base image files missing from the local export: %v", err)
	}

	first, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, first)
	if !names["out/a"] || names["bin/vi"] || !names["bin/busybox"] {
		t.Errorf("rootfs tar entries wrong: out/a %v, bin/vi %v, bin/busybox %v", names["out/a"], names["bin/vi"], names["bin/busybox"])
	}
	var again bytes.Buffer
	if _, err := (exporter.RootfsTar{W: &again}).Export(context.Background(), exporter.Source{Content: e.store.Parts().Content, Manifest: res.Manifest}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again.Bytes()) {
		t.Error("two exports of one image differ")
	}

	img, err := e.store.Import(context.Background(), bytes.NewReader(first), store.ImportOptions{Name: "roundtrip"})
	if err != nil {
		t.Fatal(err)
	}
	back := e.readImage(&builder.Result{Manifest: img.Target})
	if f := back.file(t, "/out/a"); string(f.data) != "artifact\n" || f.hdr.Mode&0o7777 != 0o751 {
		t.Errorf("imported /out/a = %q mode %o", f.data, f.hdr.Mode&0o7777)
	}
}

func tarNames(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Clean(h.Name)] = true
	}
}
