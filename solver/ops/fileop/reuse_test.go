package fileop

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache/contenthash"
	"github.com/strata-build/strata/llb"
)

// overlayCopy copies src into a fresh overlay over lower and returns the
// overlay's upper dir and what the merged tree looked like.
func overlayCopy(t *testing.T, lower string, src Source, a *llb.CopyAction, reuse func(upper string) *Reuse) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	upper, work, mnt := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "mnt")
	for _, d := range []string{upper, work, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "index=off,redirect_dir=off,metacopy=off,lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs unusable here: %v", err)
	}
	var r *Reuse
	if reuse != nil {
		r = reuse(upper)
	}
	err := CopyWith(context.Background(), src, mnt, a, CopyOptions{Reuse: r})
	if uerr := unix.Unmount(mnt, 0); uerr != nil {
		t.Fatal(uerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		if err := r.Link(); err != nil { // into the unmounted upper dir
			t.Fatal(err)
		}
	}
	// Files linked into the upper dir show in a new mount of it.
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+upper+":"+lower); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, 0)
	got := describe(t, mnt)
	return upper, got
}

func sumOf(t *testing.T, src Source, a *llb.CopyAction) map[string]string {
	t.Helper()
	s, err := (*contenthash.Cache)(nil).Checksum(context.Background(), src, a)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range s.Files {
		out[k] = v.String()
	}
	return out
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestCopyReuse(t *testing.T) {
	needRoot(t)
	lower, srcRoot := t.TempDir(), t.TempDir()
	tree(t, lower, map[string]string{"app/": "", "app/exists": "lower"})
	tree(t, srcRoot, map[string]string{
		"aaa": "first entry, into a dir only the lower has", "same": "same", "edited": "v1", "touched": "t", "chmodded": "c", "xattr": "x", "exists": "e",
		"d/deep/f": "deep", "hard1": "h",
	})
	if err := os.Link(filepath.Join(srcRoot, "hard1"), filepath.Join(srcRoot, "hard2")); err != nil {
		t.Fatal(err)
	}
	src := Source{Root: srcRoot, Context: true}
	a := &llb.CopyAction{Src: []string{"."}, Dest: "/app/", CopyDirContents: true}
	prevFiles := sumOf(t, src, a)
	prev, _ := overlayCopy(t, lower, src, a, nil)

	// Change the context: new content, a new mtime only, a new mode; and an
	// attribute on the earlier result that this copy would not set.
	tree(t, srcRoot, map[string]string{"edited": "v2"})
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(srcRoot, "touched"), later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(srcRoot, "chmodded"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(prev, "app/xattr"), "user.stale", []byte("1"), 0); err != nil {
		t.Skipf("user xattrs unsupported: %v", err)
	}
	files := sumOf(t, src, a)
	digests := func(m map[string]string) map[string]digestT { return toDigests(m) }
	upper, got := overlayCopy(t, lower, src, a, func(upper string) *Reuse {
		return &Reuse{Upper: upper, Prev: prev, Files: digests(files), PrevFiles: digests(prevFiles)}
	})
	_, want := overlayCopy(t, lower, src, a, nil)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("copy with reuse differs from a plain copy (-want +got):\n%s", d)
	}
	for _, name := range []string{"same", "edited", "touched", "d/deep/f", "hard2"} {
		p := filepath.Join("app", name)
		if g, w := mtime(t, filepath.Join(upper, p)), mtime(t, filepath.Join(srcRoot, name)); !g.Equal(w) {
			t.Errorf("%s mtime = %v, want the source's %v", name, g, w)
		}
	}
	for name, linked := range map[string]bool{
		"aaa": true, "same": true, "d/deep/f": true,
		"edited": false, "touched": false, "chmodded": false, "xattr": false,
		"exists": false, // a lower file is in the way: replaced through the mount
		"hard1":  false, "hard2": false,
	} {
		p := filepath.Join("app", name)
		if shared := ino(t, filepath.Join(upper, p)) == ino(t, filepath.Join(prev, p)); shared != linked {
			t.Errorf("%s: shares the earlier inode = %v, want %v", name, shared, linked)
		}
	}
	if ino(t, filepath.Join(upper, "app/hard1")) != ino(t, filepath.Join(upper, "app/hard2")) {
		t.Error("hard1 and hard2 are no longer one file")
	}
	// The earlier result is untouched.
	for name, data := range map[string]string{"edited": "v1", "same": "same", "d/deep/f": "deep"} {
		b, err := os.ReadFile(filepath.Join(prev, "app", name))
		if err != nil || string(b) != data {
			t.Errorf("earlier %s = %q, %v; want %q", name, b, err, data)
		}
	}
	if got := mtime(t, filepath.Join(prev, "app/touched")); got.Equal(later) {
		t.Errorf("earlier touched got the new mtime")
	}
	// Directories made by the copy get their source metadata after the links.
	if g, w := mtime(t, filepath.Join(upper, "app/d/deep")), mtime(t, filepath.Join(srcRoot, "d/deep")); !g.Equal(w) {
		t.Errorf("app/d/deep mtime = %v, want the source's %v", g, w)
	}
}

func TestCopyReuseWrongEarlierTree(t *testing.T) {
	needRoot(t)
	lower, srcRoot, prev := t.TempDir(), t.TempDir(), t.TempDir()
	tree(t, srcRoot, map[string]string{"f": "new", "g": "-> f"})
	// An earlier tree whose files do not match what is copied: a different
	// file type and different bytes under an equal digest claim.
	tree(t, prev, map[string]string{"f/": "", "g": "old"})
	src := Source{Root: srcRoot, Context: true}
	a := &llb.CopyAction{Src: []string{"."}, Dest: "/", CopyDirContents: true}
	files := toDigests(sumOf(t, src, a))
	_, got := overlayCopy(t, lower, src, a, func(upper string) *Reuse {
		return &Reuse{Upper: upper, Prev: prev, Files: files, PrevFiles: files}
	})
	want := map[string]string{"f": "file 0644 0:0 new", "g": "link -> f"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("copy (-want +got):\n%s", d)
	}
}

type digestT = digest.Digest

func toDigests(m map[string]string) map[string]digest.Digest {
	out := map[string]digest.Digest{}
	for k, v := range m {
		out[k] = digest.Digest(v)
	}
	return out
}

// Link makes the decided links into an unmounted upper dir and leaves the
// directories they land in with the times they had; a file it cannot link
// (here: the earlier file is on another file system) is copied instead.
func TestReuseLinkKeepsDirTimes(t *testing.T) {
	needRoot(t)
	prev, upper := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(prev, "f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(upper, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	shm := "/dev/shm"
	other, err := os.MkdirTemp(shm, "strata-reuse-")
	if err != nil {
		t.Skipf("no tmpfs at %s for the cross-device case: %v", shm, err)
	}
	defer os.RemoveAll(other)
	if err := os.WriteFile(filepath.Join(other, "g"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Reuse{Upper: upper, Prev: prev}
	r.links = []link{
		{prev: filepath.Join(prev, "f"), dst: filepath.Join(dir, "f")},
		{prev: filepath.Join(other, "g"), dst: filepath.Join(dir, "g")},
	}
	if err := r.Link(); err != nil {
		t.Fatal(err)
	}
	if got := mtime(t, dir); !got.Equal(old) {
		t.Errorf("dir mtime %v after Link, want %v", got, old)
	}
	if st := statT(t, filepath.Join(dir, "f")); st.Nlink != 2 {
		t.Errorf("f has %d links, want 2 (linked)", st.Nlink)
	}
	st := statT(t, filepath.Join(dir, "g"))
	if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != "other" || st.Nlink != 1 || st.Mode&0o7777 != 0o600 {
		t.Errorf("g: %q, %d links, mode %o: want a copy with mode 600", b, st.Nlink, st.Mode&0o7777)
	}
}
