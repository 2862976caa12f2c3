package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/strata-build/strata/mount"
	"golang.org/x/sys/unix"
)

// tarOf builds a layer from headers, with body giving the content of
// regular files by entry name.
func tarOf(t *testing.T, hdrs []*tar.Header, body map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		var b string
		if h.Typeflag == tar.TypeReg {
			b = body[h.Name]
			h.Size = int64(len(b))
		}
		must(t, tw.WriteHeader(h))
		if b != "" {
			if _, err := tw.Write([]byte(b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func reg(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }
func dir(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755} }
func sym(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}
}
func hard(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}
}

func bindOf(root string) []mount.Mount {
	return []mount.Mount{{Type: "bind", Source: root, Options: []string{"rbind", "rw"}}}
}

func TestApplyRefusesEscapes(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name string
		hdrs []*tar.Header
	}{
		{"dot-dot", []*tar.Header{reg("../evil")}},
		{"dot-dot inside", []*tar.Header{reg("a/../../evil")}},
		{"absolute", []*tar.Header{reg("/evil")}},
		{"symlinked parent", []*tar.Header{sym("l", "../../.."), reg("l/evil")}},
		{"symlinked parent, nested", []*tar.Header{dir("d/"), sym("d/l", "../../x"), reg("d/l/evil")}},
		{"symlink chain", []*tar.Header{sym("a", "b"), sym("b", "../c"), reg("a/evil")}},
		{"hardlink dot-dot", []*tar.Header{hard("h", "../../etc/passwd")}},
		{"hardlink absolute", []*tar.Header{hard("h", "/etc/passwd")}},
		{"hardlink through symlink", []*tar.Header{sym("l", "../../../../etc"), hard("h", "l/passwd")}},
		{"whiteout through symlink", []*tar.Header{sym("l", "../.."), reg("l/.wh.x")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outer := t.TempDir()
			root := filepath.Join(outer, "a", "b", "root")
			must(t, os.MkdirAll(root, 0o755))
			write(t, filepath.Join(outer, "a", "x"), "keep me", 0o644)
			_, err := Apply(context.Background(), bindOf(root), bytes.NewReader(tarOf(t, c.hdrs, nil)))
			if !errors.Is(err, ErrEscape) || !strings.Contains(err.Error(), "escapes the root") {
				t.Fatalf("Apply = %v, want an escape error", err)
			}
			entries, _ := os.ReadDir(outer)
			if len(entries) != 1 {
				t.Fatalf("something was written outside the root: %v", entries)
			}
			wantContent(t, filepath.Join(outer, "a", "x"), "keep me")
		})
	}
}

func wantContent(t *testing.T, p, want string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("%s = %q, want %q", p, b, want)
	}
}

// TestApplyConfinesSymlinks checks the symlinks that stay inside: absolute
// targets resolve against the root, and an entry replaces a symlink rather
// than writing through it.
func TestApplyConfinesSymlinks(t *testing.T) {
	needRoot(t)
	outside := filepath.Join(t.TempDir(), "outside")
	write(t, outside, "host", 0o644)
	root := t.TempDir()
	layer := tarOf(t, []*tar.Header{
		sym("etc", "/real-etc"), dir("real-etc/"), reg("etc/passwd"),
		sym("s", outside), reg("s"),
	}, map[string]string{"etc/passwd": "inside", "s": "replaced"})
	if _, err := Apply(context.Background(), bindOf(root), bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	wantContent(t, filepath.Join(root, "real-etc/passwd"), "inside")
	wantContent(t, filepath.Join(root, "s"), "replaced")
	wantContent(t, outside, "host")
	if fi, err := os.Lstat(filepath.Join(root, "s")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("s is %v (err %v), want a regular file", fi, err)
	}
}

// TestApplyWhiteouts applies whiteouts and an opaque dir both ways: into an
// overlay upper (as markers) and into a bind (as deletions).
func TestApplyWhiteouts(t *testing.T) {
	needRoot(t)
	layer := tarOf(t, []*tar.Header{
		reg(".wh.gone"), dir("dir/"), reg("dir/.wh..wh..opq"), reg("dir/new"), reg("d/.wh.f"),
	}, map[string]string{"dir/new": "n"})
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newStore(t, driver)
			s.commit(t, "base", "", func(r string) { baseTree(t, r); write(t, filepath.Join(r, "gone"), "g", 0o644) }, DiffOptions{})
			ms, err := s.sn.Prepare(context.Background(), "unpack", "base")
			must(t, err)
			_, err = Apply(context.Background(), ms, bytes.NewReader(layer))
			must(t, err)
			if up, ok := upperDir(ms); ok {
				var st unix.Stat_t
				must(t, unix.Lstat(filepath.Join(up, "gone"), &st))
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
					t.Fatalf("whiteout in upper has mode %o rdev %d", st.Mode, st.Rdev)
				}
				v, err := getXattr(filepath.Join(up, "dir"), opaqueXattr)
				if err != nil || string(v) != "y" {
					t.Fatalf("opaque xattr = %q, %v", v, err)
				}
			}
			must(t, s.sn.Commit(context.Background(), "after", "unpack"))
			var names []string
			for _, l := range s.tree(t, "after") {
				names = append(names, strings.Fields(l)[0])
			}
			want := "d del dir dir/new keep ln-old mod null"
			if got := strings.Join(names, " "); got != want {
				t.Fatalf("tree after whiteouts: %s, want %s", got, want)
			}
		})
	}
}

// TestApplyFormats applies the same layer plain, gzipped and zstd-compressed
// and checks that all give the same diffID and tree.
func TestApplyFormats(t *testing.T) {
	needRoot(t)
	mtime := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	plain := tarOf(t, []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: mtime, Uid: 3, Gid: 4},
		{Typeflag: tar.TypeReg, Name: "bin/tool", Mode: 0o4755, ModTime: mtime, Uid: 5, Gid: 6,
			PAXRecords: map[string]string{"SCHILY.xattr.user.cap": "bits"}},
		{Typeflag: tar.TypeLink, Name: "bin/alias", Linkname: "bin/tool"},
		{Typeflag: tar.TypeBlock, Name: "disk", Mode: 0o600, Devmajor: 8, Devminor: 1, ModTime: mtime},
	}, map[string]string{"bin/tool": "#!/bin/sh\n"})
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	must(t, zw.Close())
	enc, err := zstd.NewWriter(&zs)
	must(t, err)
	enc.Write(plain)
	must(t, enc.Close())
	want := fmt.Sprintf("sha256:%x", sha256.Sum256(plain))
	var trees [][]string
	for _, layer := range [][]byte{plain, gz.Bytes(), zs.Bytes()} {
		root := t.TempDir()
		got, err := Apply(context.Background(), bindOf(root), bytes.NewReader(layer))
		must(t, err)
		if string(got) != want {
			t.Fatalf("diffID %s, want %s", got, want)
		}
		trees = append(trees, describeTree(t, root))
	}
	wantTree := []string{
		fmt.Sprintf(`bin mode=40755 owner=3:4 mtime=%d rdev=0`, mtime.Unix()),
		fmt.Sprintf(`bin/alias mode=104755 owner=5:6 mtime=%d rdev=0 links=2 content="#!/bin/sh\n" user.cap=bits`, mtime.Unix()),
		fmt.Sprintf(`bin/tool mode=104755 owner=5:6 mtime=%d rdev=0 links=2 content="#!/bin/sh\n" user.cap=bits`, mtime.Unix()),
		fmt.Sprintf(`disk mode=60600 owner=0:0 mtime=%d rdev=%d links=1`, mtime.Unix(), unix.Mkdev(8, 1)),
	}
	for i, tree := range trees {
		if strings.Join(tree, "\n") != strings.Join(wantTree, "\n") {
			t.Fatalf("tree %d:\n%s\nwant:\n%s", i, strings.Join(tree, "\n"), strings.Join(wantTree, "\n"))
		}
	}
}

func TestApplyRejectsGarbage(t *testing.T) {
	root := t.TempDir()
	_, err := Apply(context.Background(), bindOf(root), strings.NewReader(strings.Repeat("not a tar ", 100)))
	if err == nil || !strings.Contains(err.Error(), "read tar") {
		t.Fatalf("Apply of garbage = %v", err)
	}
	_, err = Apply(context.Background(), []mount.Mount{{Type: "tmpfs"}}, bytes.NewReader(nil))
	if err == nil || !strings.Contains(err.Error(), "unsupported mounts") {
		t.Fatalf("Apply into tmpfs = %v", err)
	}
}

func TestCompress(t *testing.T) {
	data := bytes.Repeat([]byte("strata layer bytes "), 100_000)
	var out bytes.Buffer
	diffID, blob, err := Compress(bytes.NewReader(data), &out)
	must(t, err)
	if want := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); string(diffID) != want {
		t.Fatalf("diffID %s, want %s", diffID, want)
	}
	if want := fmt.Sprintf("sha256:%x", sha256.Sum256(out.Bytes())); string(blob.Digest) != want {
		t.Fatalf("blob digest %s, want %s", blob.Digest, want)
	}
	if blob.Size != int64(out.Len()) || blob.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("blob descriptor %+v for %d bytes", blob, out.Len())
	}
	zr, err := gzip.NewReader(&out)
	must(t, err)
	back, err := io.ReadAll(zr)
	must(t, err)
	if !bytes.Equal(back, data) {
		t.Fatal("gunzip of the blob differs from the input")
	}
	if hdr := out.Bytes()[:10]; zr.Header.Name != "" || !bytes.Equal(hdr[4:8], []byte{0, 0, 0, 0}) {
		t.Fatalf("gzip header carries name %q, mtime %v", zr.Header.Name, zr.Header.ModTime)
	}
}

func BenchmarkCompress(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 32<<20)
	for i := range data { // half random, half runs: roughly like binaries
		if i%2048 < 1024 {
			data[i] = byte(rng.IntN(256))
		} else {
			data[i] = byte(i / 4096)
		}
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Compress(bytes.NewReader(data), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func forEachHeader(t *testing.T, layer []byte, fn func(name string, mtime time.Time)) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		must(t, err)
		fn(h.Name, h.ModTime)
	}
}
