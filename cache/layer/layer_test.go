package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/mount"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("layer tests need root: they chown, mknod and mount snapshots")
	}
}

// store is a snapshotter in a fresh temporary root.
type store struct {
	driver string
	sn     snapshot.Snapshotter
}

func newStore(t *testing.T, driver string) *store {
	t.Helper()
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	var sn snapshot.Snapshotter
	if driver == "overlay" {
		sn, err = snapshot.NewOverlay(filepath.Join(dir, "sn"), db)
	} else {
		sn, err = snapshot.NewNaive(filepath.Join(dir, "sn"), db)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &store{driver: driver, sn: sn}
}

var drivers = []string{"overlay", "naive"}

// commit prepares name over parent, changes it through a real mount with fn,
// commits it and returns the tar WriteDiff makes of it.
func (s *store) commit(t *testing.T, name, parent string, fn func(root string), opts DiffOptions) []byte {
	t.Helper()
	ctx := context.Background()
	ms, err := s.sn.Prepare(ctx, "build-"+name, parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.WithTemp(t.TempDir(), ms, func(root string) error { fn(root); return nil }); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	s.withView(t, parent, func(lower []mount.Mount) {
		if _, err := WriteDiff(ctx, &buf, lower, ms, opts); err != nil {
			t.Fatal(err)
		}
	})
	if err := s.sn.Commit(ctx, name, "build-"+name); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withView calls fn with the mounts of a view of name (nil for "").
func (s *store) withView(t *testing.T, name string, fn func([]mount.Mount)) {
	t.Helper()
	if name == "" {
		fn(nil)
		return
	}
	ctx := context.Background()
	key := "view-" + name + "-" + fmt.Sprint(len(t.Name()), os.Getpid())
	ms, err := s.sn.View(ctx, key, name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.sn.Remove(ctx, key)
	fn(ms)
}

// apply unpacks layer into a new snapshot name over parent and commits it.
func (s *store) apply(t *testing.T, name, parent string, layer []byte) {
	t.Helper()
	ctx := context.Background()
	ms, err := s.sn.Prepare(ctx, "unpack-"+name, parent)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Apply(ctx, ms, bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("sha256:%x", sha256.Sum256(layer)); string(got) != want {
		t.Fatalf("Apply diffID %s, want %s", got, want)
	}
	if err := s.sn.Commit(ctx, name, "unpack-"+name); err != nil {
		t.Fatal(err)
	}
}

// tree describes every file under name's view, one line each.
func (s *store) tree(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	s.withView(t, name, func(ms []mount.Mount) {
		err := mount.WithTemp(t.TempDir(), ms, func(root string) error {
			out = describeTree(t, root)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return out
}

func describeTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s mode=%o owner=%d:%d mtime=%d rdev=%d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Rdev)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR { // overlayfs counts directory links its own way
			line += fmt.Sprintf(" links=%d", st.Nlink)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" content=%q", b)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		xa, err := xattrs(p)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(xa) {
			line += fmt.Sprintf(" %s=%s", k, xa[k])
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// entries summarizes a layer tar, one line per entry.
func entries(t *testing.T, layer []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		typ := map[byte]string{tar.TypeDir: "dir", tar.TypeReg: "file", tar.TypeSymlink: "symlink",
			tar.TypeLink: "link", tar.TypeChar: "char", tar.TypeBlock: "block", tar.TypeFifo: "fifo"}[h.Typeflag]
		line := fmt.Sprintf("%s %s %o %d:%d", h.Name, typ, h.Mode, h.Uid, h.Gid)
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			line += fmt.Sprintf(" %q", b)
		case tar.TypeSymlink, tar.TypeLink:
			line += " -> " + h.Linkname
		case tar.TypeChar, tar.TypeBlock:
			line += fmt.Sprintf(" %d,%d", h.Devmajor, h.Devminor)
		}
		for _, k := range sortedKeys(h.PAXRecords) {
			if strings.HasPrefix(k, paxXattr) {
				line += fmt.Sprintf(" %s=%s", strings.TrimPrefix(k, paxXattr), h.PAXRecords[k])
			}
		}
		if h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.ModTime.Nanosecond() != 0 {
			t.Errorf("entry %s has a field beyond uid/gid/mode/size/mtime: %+v", h.Name, h)
		}
		out = append(out, line)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(data), mode))
	must(t, os.Chmod(p, mode))
}

// baseTree is the parent every diff case changes.
func baseTree(t *testing.T, root string) {
	write(t, filepath.Join(root, "keep"), "k", 0o644)
	write(t, filepath.Join(root, "mod"), "1", 0o644)
	write(t, filepath.Join(root, "del"), "x", 0o644)
	write(t, filepath.Join(root, "d/f"), "f", 0o644)
	write(t, filepath.Join(root, "dir/a"), "a", 0o644)
	write(t, filepath.Join(root, "dir/b"), "b", 0o644)
	must(t, os.Symlink("keep", filepath.Join(root, "ln-old")))
	must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Chmod(filepath.Join(root, "null"), 0o666))
	must(t, unix.Lsetxattr(filepath.Join(root, "keep"), "user.base", []byte("1"), 0))
}
