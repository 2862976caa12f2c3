package contenthash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/context/local"
)

// referenceEntry is the entry digest format written out with fmt: the
// digester must produce exactly these bytes.
func referenceEntry(e local.Entry, content digest.Digest, owners bool) digest.Digest {
	st := e.Info.Sys().(*syscall.Stat_t)
	var b bytes.Buffer
	fmt.Fprintf(&b, "path %q\ntype %o\nmode %o\n", e.Dest(), st.Mode&syscall.S_IFMT, st.Mode&0o7777)
	if owners {
		fmt.Fprintf(&b, "owner %d:%d\n", st.Uid, st.Gid)
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFLNK:
		fmt.Fprintf(&b, "link %q\n", e.Link)
	case syscall.S_IFCHR, syscall.S_IFBLK:
		fmt.Fprintf(&b, "rdev %d\n", st.Rdev)
	case syscall.S_IFREG:
		fmt.Fprintf(&b, "content %s\n", content)
	}
	return digest.FromBytes(b.Bytes())
}

func TestDigestFormat(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"a b\"c.txt": "1", "dir/f\tx": "22", "dir/ü": "3"})
	if err := os.Symlink("../ta\"rget", filepath.Join(root, "dir", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "dir", "ü"), os.ModeSetgid|0o750); err != nil {
		t.Fatal(err)
	}
	for _, src := range []local.Source{{Root: root, Context: true}, {Root: root}} {
		sel, err := local.Select(context.Background(), src, all)
		if err != nil {
			t.Fatal(err)
		}
		var entries []local.Entry
		if err := sel.Walk(context.Background(), &sel.Matches[0], func(e local.Entry) error {
			entries = append(entries, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		contents, err := (*Cache)(nil).contentDigests(context.Background(), nil, entries)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		fmt.Fprintf(h, "%s\n", version)
		var d digester
		for i, e := range entries {
			want := referenceEntry(e, contents[i], !src.Context)
			if got := d.entry(e, e.Dest(), contents[i], !src.Context); got != want {
				t.Errorf("%s: digest %s, want %s", e.Dest(), got, want)
			}
			fmt.Fprintf(h, "%q %s\n", e.Dest(), want)
		}
		s := sum(t, nil, src, all)
		if want := digest.NewDigest(digest.SHA256, h); s.Digest != want || len(s.Files) != len(entries) {
			t.Errorf("sum %s over %d files, want %s over %d", s.Digest, len(s.Files), want, len(entries))
		}
	}
}

// A build that changes nothing writes nothing; a removed file's record is
// dropped by the next Save; each root has its own file.
func TestSaveWritesOnlyChanges(t *testing.T) {
	root, other, dir := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, root, map[string]string{"a": "1", "gone": "2", "sub/c": "3"})
	write(t, other, map[string]string{"x": "1"})
	build := func(roots ...string) *Cache {
		t.Helper()
		c, err := OpenCache(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roots {
			sum(t, c, local.Source{Root: r, Context: true}, all)
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := build(root, other)
	file := c.fileFor(root)
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	build(root)
	after, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("a no-op build rewrote the cache file")
	}
	if err := os.Remove(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	build(root)
	recs, err := readCache(file)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p := range recs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	want := []string{filepath.Join(root, "a"), filepath.Join(root, "sub", "c")}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("records after removing a file (-want +got):\n%s", diff)
	}
	if recs, err := readCache(c.fileFor(other)); err != nil || len(recs) != 1 {
		t.Errorf("other root: %d records, %v", len(recs), err)
	}
}
