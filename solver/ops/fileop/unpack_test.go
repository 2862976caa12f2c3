package fileop

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/strata-build/strata/internal/compression"
	"github.com/strata-build/strata/llb"
)

// testTar builds an archive with a directory, a file, a symlink, a hard
// link and entries that try to leave the destination.
func testTar(t *testing.T, outside string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := []struct {
		hdr  tar.Header
		data string
	}{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "pkg/", Mode: 0o750, ModTime: mt}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "pkg/a", Mode: 0o600, Uid: 7, Gid: 8, ModTime: mt}, data: "alpha"},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "pkg/l", Linkname: "a", ModTime: mt}},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "pkg/h", Linkname: "pkg/a", ModTime: mt}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../../up", Mode: 0o644, ModTime: mt}, data: "up"},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "esc", Linkname: outside, ModTime: mt}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "esc/pwned", Mode: 0o644, ModTime: mt}, data: "no"},
	}
	for _, e := range entries {
		e.hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t *testing.T, c compression.Kind, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case compression.None:
		return data
	case compression.Gzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case compression.Zstd:
		w, _ := zstd.NewWriter(&buf)
		w.Write(data)
		w.Close()
	case compression.Bzip2, compression.Xz:
		prog := map[compression.Kind]string{compression.Bzip2: "bzip2", compression.Xz: "xz"}[c]
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed", prog)
		}
		cmd := exec.Command(prog, "-c")
		cmd.Stdin, cmd.Stdout = bytes.NewReader(data), &buf
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
	}
	if compression.Detect(buf.Bytes()) != c {
		t.Fatalf("detected %v, want %v", compression.Detect(buf.Bytes()), c)
	}
	return buf.Bytes()
}

func TestCopyUnpack(t *testing.T) {
	needRoot(t)
	for name, c := range map[string]compression.Kind{"tar": compression.None, "gzip": compression.Gzip, "bzip2": compression.Bzip2, "xz": compression.Xz, "zstd": compression.Zstd} {
		t.Run(name, func(t *testing.T) {
			srcRoot, destRoot, outside := t.TempDir(), t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(srcRoot, "archive"), compress(t, c, testTar(t, outside)), 0o644); err != nil {
				t.Fatal(err)
			}
			a := &llb.CopyAction{Src: []string{"archive"}, Dest: "/u", AttemptUnpack: true, CreateDestPath: true}
			if err := Copy(context.Background(), Source{Root: srcRoot, Context: true}, destRoot, a); err != nil {
				t.Fatal(err)
			}
			got := describe(t, filepath.Join(destRoot, "u"))
			delete(got, "esc")
			want := map[string]string{
				"pkg": "dir 0750 0:0", "pkg/a": "file 0600 7:8 alpha", "pkg/h": "file 0600 7:8 alpha",
				"pkg/l": "link -> a", "up": "file 0644 0:0 up",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("extracted (-want +got):\n%s", diff)
			}
			if sa, sh := statT(t, filepath.Join(destRoot, "u/pkg/a")), statT(t, filepath.Join(destRoot, "u/pkg/h")); sa.Ino != sh.Ino {
				t.Error("hard link extracted as a copy")
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("extraction wrote outside the destination: %v", entries)
			}
			if _, err := os.Stat(filepath.Join(destRoot, outside, "pwned")); err != nil {
				t.Errorf("entry below an escaping symlink should land inside: %v", err)
			}
		})
	}
}

func TestCopyUnpackLeavesOtherFiles(t *testing.T) {
	needRoot(t)
	srcRoot, destRoot := t.TempDir(), t.TempDir()
	notTar := compress(t, compression.Gzip, []byte("just text, not a tar"))
	if err := os.WriteFile(filepath.Join(srcRoot, "f.gz"), notTar, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &llb.CopyAction{Src: []string{"f.gz"}, Dest: "/d/", AttemptUnpack: true, CreateDestPath: true}
	if err := Copy(context.Background(), Source{Root: srcRoot, Context: true}, destRoot, a); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(destRoot, "d/f.gz"))
	if err != nil || !bytes.Equal(b, notTar) {
		t.Errorf("non-archive not copied as is: %v", err)
	}
}
