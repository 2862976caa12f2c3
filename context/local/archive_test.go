package local

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type tarEntry struct {
	name, link, data string
	typ              byte
	mode             int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data)), ModTime: time.Unix(1e9, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil && e.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractTarWritesFilesModesAndLinks(t *testing.T) {
	b := makeTar(t, []tarEntry{
		{name: "dir/", typ: tar.TypeDir, mode: 0o750},
		{name: "dir/f", typ: tar.TypeReg, mode: 0o640, data: "hello"},
		{name: "./Dockerfile", typ: tar.TypeReg, mode: 0o644, data: "FROM scratch\n"},
		{name: "deep/er/x", typ: tar.TypeReg, mode: 0o755, data: "x"},
		{name: "ln", typ: tar.TypeSymlink, link: "dir/f"},
		{name: "hard", typ: tar.TypeLink, link: "dir/f"},
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	for name, data := range map[string][]byte{"plain": b, "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			if !IsTar(data) {
				t.Fatal("IsTar = false for a tar")
			}
			dir := t.TempDir()
			if err := ExtractTar(bytes.NewReader(data), dir); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "ln"))
			if err != nil || string(got) != "hello" {
				t.Errorf("ln reads %q, %v", got, err)
			}
			for p, mode := range map[string]os.FileMode{"dir": 0o750 | os.ModeDir, "dir/f": 0o640, "deep/er/x": 0o755, "Dockerfile": 0o644} {
				fi, err := os.Lstat(filepath.Join(dir, p))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != mode {
					t.Errorf("%s mode %v, want %v", p, fi.Mode(), mode)
				}
			}
			fi, _ := os.Stat(filepath.Join(dir, "dir"))
			if !fi.ModTime().Equal(time.Unix(1e9, 0)) {
				t.Errorf("dir mtime %v", fi.ModTime())
			}
			a, _ := os.Stat(filepath.Join(dir, "hard"))
			f, _ := os.Stat(filepath.Join(dir, "dir/f"))
			if !os.SameFile(a, f) {
				t.Error("hard is not a hard link of dir/f")
			}
		})
	}
}

func TestExtractTarStaysInside(t *testing.T) {
	cases := map[string][]tarEntry{
		"dotdot":   {{name: "../escape", typ: tar.TypeReg, mode: 0o644, data: "x"}},
		"absolute": {{name: "/escape", typ: tar.TypeReg, mode: 0o644, data: "x"}},
		"through symlink": {
			{name: "out", typ: tar.TypeSymlink, link: "../"},
			{name: "out/escape", typ: tar.TypeReg, mode: 0o644, data: "x"},
		},
		"through absolute symlink": {
			{name: "abs", typ: tar.TypeSymlink, link: "/tmp"},
			{name: "abs/escape", typ: tar.TypeReg, mode: 0o644, data: "x"},
		},
		"hard link out": {{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "ctx")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := ExtractTar(bytes.NewReader(makeTar(t, entries)), dir)
			if _, serr := os.Lstat(filepath.Join(parent, "escape")); serr == nil {
				t.Fatal("a file was written outside the context dir")
			}
			if _, serr := os.Lstat("/tmp/escape"); serr == nil {
				t.Fatal("a file was written to /tmp")
			}
			if fi, serr := os.Lstat(filepath.Join(dir, "h")); serr == nil && fi.Mode().IsRegular() {
				t.Fatal("a hard link to a file outside was made")
			}
			if err != nil && !strings.Contains(err.Error(), "context tar") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

func TestIsTarRejectsDockerfile(t *testing.T) {
	if IsTar([]byte("FROM scratch\nCOPY a /a\n")) {
		t.Error("a Dockerfile was taken for a tar")
	}
}
