package fileop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/llb"
)

var srcTree = map[string]string{
	"a.txt":         "A",
	"b.txt":         "B",
	"c.md":          "C",
	"app.log":       "log",
	"keep.log":      "keep",
	"dir/f":         "F",
	"dir/sub/g.go":  "G",
	"dir/sub/h.txt": "H",
	"dir/ln":        "-> f",
	"x/y/z.txt":     "Z",
	"link.txt":      "-> a.txt",
}

func TestCopy(t *testing.T) {
	needRoot(t)
	const file, dir = "file 0644 0:0 ", "dir 0755 0:0"
	tests := []struct {
		name     string
		a        llb.CopyAction
		excludes []string
		dest     map[string]string // initial destination tree
		want     map[string]string // entries below destRoot (only those listed are compared when partial)
		partial  bool
		err      string
	}{
		{name: "file to file", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/b.txt"},
			want: map[string]string{"b.txt": file + "A"}},
		{name: "leading slash source", a: llb.CopyAction{Src: []string{"/a.txt"}, Dest: "/b.txt"},
			want: map[string]string{"b.txt": file + "A"}},
		{name: "file into dir slash", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/d/", CreateDestPath: true},
			want: map[string]string{"d": dir, "d/a.txt": file + "A"}},
		{name: "file into existing dir", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/d"},
			dest: map[string]string{"d/": ""}, want: map[string]string{"d": dir, "d/a.txt": file + "A"}},
		{name: "missing parent without create", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/no/such/f"},
			err: "copy to /no/such/f: parent directory does not exist"},
		{name: "dir contents", a: llb.CopyAction{Src: []string{"dir"}, Dest: "/x", CopyDirContents: true, CreateDestPath: true},
			want: map[string]string{"x": dir, "x/f": file + "F", "x/ln": "link -> f", "x/sub": dir,
				"x/sub/g.go": file + "G", "x/sub/h.txt": file + "H"}},
		{name: "dir itself into", a: llb.CopyAction{Src: []string{"dir/sub"}, Dest: "/x/", CreateDestPath: true},
			want: map[string]string{"x": dir, "x/sub": dir, "x/sub/g.go": file + "G", "x/sub/h.txt": file + "H"}},
		{name: "wildcard", a: llb.CopyAction{Src: []string{"*.txt"}, Dest: "/w/", AllowWildcard: true, CreateDestPath: true},
			want: map[string]string{"w": dir, "w/a.txt": file + "A", "w/b.txt": file + "B", "w/link.txt": "link -> a.txt"}},
		{name: "wildcard follows matched symlinks", a: llb.CopyAction{Src: []string{"l*.txt"}, Dest: "/w/", AllowWildcard: true, FollowSymlinks: true, CreateDestPath: true},
			want: map[string]string{"w": dir, "w/link.txt": file + "A"}},
		{name: "double star", a: llb.CopyAction{Src: []string{"**/*.go"}, Dest: "/g/", AllowWildcard: true, CreateDestPath: true},
			want: map[string]string{"g": dir, "g/g.go": file + "G"}},
		{name: "empty wildcard", a: llb.CopyAction{Src: []string{"*.none"}, Dest: "/e/", AllowWildcard: true},
			err: `copy source "*.none": not found: looked for /*.none`},
		{name: "empty wildcard allowed", a: llb.CopyAction{Src: []string{"*.none"}, Dest: "/e/", AllowWildcard: true, AllowEmptyWildcard: true},
			want: map[string]string{}},
		{name: "multiple sources", a: llb.CopyAction{Src: []string{"a.txt", "c.md"}, Dest: "/m/", CreateDestPath: true},
			want: map[string]string{"m": dir, "m/a.txt": file + "A", "m/c.md": file + "C"}},
		{name: "multiple sources need a dir", a: llb.CopyAction{Src: []string{"a.txt", "c.md"}, Dest: "/m"},
			err: "copy to /m: multiple sources need a directory destination ending in /"},
		{name: "missing source", a: llb.CopyAction{Src: []string{"nope/x.txt"}, Dest: "/"},
			err: `copy source "nope/x.txt": not found: looked for /nope/x.txt`},
		{name: "follow named symlink", a: llb.CopyAction{Src: []string{"link.txt"}, Dest: "/f", FollowSymlinks: true},
			want: map[string]string{"f": file + "A"}},
		{name: "symlink kept without follow", a: llb.CopyAction{Src: []string{"link.txt"}, Dest: "/f"},
			want: map[string]string{"f": "link -> a.txt"}},
		{name: "dockerignore with exception", excludes: []string{"*.log", "!keep.log", "dir/sub"},
			a:    llb.CopyAction{Src: []string{"."}, Dest: "/", CopyDirContents: true},
			want: map[string]string{"keep.log": file + "keep", "dir": dir, "dir/f": file + "F"}, partial: true},
		{name: "dockerignore hides named source", excludes: []string{"*.log"},
			a:   llb.CopyAction{Src: []string{"app.log"}, Dest: "/"},
			err: `copy source "app.log": not found: looked for /app.log (excluded by .dockerignore)`},
		{name: "copy --exclude", a: llb.CopyAction{Src: []string{"dir"}, Dest: "/e", CopyDirContents: true, CreateDestPath: true, Excludes: []string{"**/*.txt", "ln"}},
			want: map[string]string{"e": dir, "e/f": file + "F", "e/sub": dir, "e/sub/g.go": file + "G"}},
		{name: "exclude applies to wildcard matches", a: llb.CopyAction{Src: []string{"*.txt"}, Dest: "/w/", AllowWildcard: true, Excludes: []string{"b.txt", "link.txt"}},
			want: map[string]string{"w": dir, "w/a.txt": file + "A"}},
		{name: "parents", a: llb.CopyAction{Src: []string{"x/y/z.txt", "a.txt"}, Dest: "/p", Parents: true, CreateDestPath: true},
			want: map[string]string{"p": dir, "p/a.txt": file + "A", "p/x": dir, "p/x/y": dir, "p/x/y/z.txt": file + "Z"}},
		{name: "parents pivot", a: llb.CopyAction{Src: []string{"x/./y/z.txt"}, Dest: "/p/", Parents: true, CreateDestPath: true},
			want: map[string]string{"p": dir, "p/y": dir, "p/y/z.txt": file + "Z"}},
		{name: "parents wildcard", a: llb.CopyAction{Src: []string{"**/*.txt"}, Dest: "/p/", Parents: true, AllowWildcard: true, CreateDestPath: true},
			want: map[string]string{"p": dir, "p/a.txt": file + "A", "p/b.txt": file + "B", "p/link.txt": "link -> a.txt",
				"p/dir": dir, "p/dir/sub": dir, "p/dir/sub/h.txt": file + "H", "p/x": dir, "p/x/y": dir, "p/x/y/z.txt": file + "Z"}},
		{name: "chmod octal", a: llb.CopyAction{Src: []string{"dir/sub"}, Dest: "/c", Chmod: "0700", CopyDirContents: true},
			want: map[string]string{"c": "dir 0755 0:0", "c/g.go": "file 0700 0:0 G", "c/h.txt": "file 0700 0:0 H"}},
		{name: "chmod symbolic", a: llb.CopyAction{Src: []string{"dir/sub"}, Dest: "/c", Chmod: "u+x,g-r,o=rX", CopyDirContents: true},
			want: map[string]string{"c": "dir 0755 0:0", "c/g.go": "file 0705 0:0 G", "c/h.txt": "file 0705 0:0 H"}},
		{name: "bad chmod", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/a", Chmod: "u*x"},
			err: `invalid chmod "u*x": clause "u*x": expected +, - or = at "*x"`},
		{name: "chown by name", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/a", Chown: &llb.Chown{User: "app"}},
			dest: map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"},
			want: map[string]string{"a": "file 0644 1000:1001 A"}, partial: true},
		{name: "chown user and group names", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/a", Chown: &llb.Chown{User: "app", Group: "staff"}},
			dest: map[string]string{"etc/passwd": "app:x:1000:1001::/:/bin/sh\n", "etc/group": "staff:x:50:\n"},
			want: map[string]string{"a": "file 0644 1000:50 A"}, partial: true},
		{name: "chown numeric", a: llb.CopyAction{Src: []string{"dir/sub"}, Dest: "/n/", Chown: &llb.Chown{User: "42"}, CreateDestPath: true},
			want: map[string]string{"n": "dir 0755 42:42", "n/sub": "dir 0755 42:42", "n/sub/g.go": "file 0644 42:42 G", "n/sub/h.txt": "file 0644 42:42 H"}},
		{name: "chown unknown user", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/a", Chown: &llb.Chown{User: "app"}},
			err: "unable to find user app: no matching entries in passwd file"},
		{name: "chown unknown group", a: llb.CopyAction{Src: []string{"a.txt"}, Dest: "/a", Chown: &llb.Chown{User: "1", Group: "wheel"}},
			err: "unable to find group wheel: no matching entries in group file"},
		{name: "overwrite existing file and symlink", a: llb.CopyAction{Src: []string{"a.txt", "b.txt"}, Dest: "/o/"},
			dest: map[string]string{"o/a.txt": "old", "o/b.txt": "-> /etc/hostname"},
			want: map[string]string{"o": dir, "o/a.txt": file + "A", "o/b.txt": file + "B"}},
		{name: "dir over file fails", a: llb.CopyAction{Src: []string{"dir"}, Dest: "/o/"},
			dest: map[string]string{"o/dir": "file"}, err: "copy to /o/dir: cannot overwrite non-directory with directory"},
		{name: "file over dir fails among many", a: llb.CopyAction{Src: []string{"."}, Dest: "/o/", CopyDirContents: true},
			dest: map[string]string{"o/dir/sub/h.txt/": ""}, err: "copy to /o/dir/sub/h.txt: cannot overwrite directory with non-directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcRoot, destRoot := t.TempDir(), t.TempDir()
			tree(t, srcRoot, srcTree)
			tree(t, destRoot, tt.dest)
			src := Source{Root: srcRoot, Excludes: tt.excludes, Context: true}
			err := Copy(context.Background(), src, destRoot, &tt.a)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := describe(t, destRoot)
			for k := range tt.dest {
				if _, listed := tt.want[strings.TrimSuffix(k, "/")]; !listed {
					delete(got, strings.TrimSuffix(k, "/"))
				}
			}
			if tt.partial {
				for k := range got {
					if _, ok := tt.want[k]; !ok {
						delete(got, k)
					}
				}
			}
			delete(got, "etc")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("destination (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCopyNotFoundError(t *testing.T) {
	src := Source{Root: t.TempDir()}
	err := Copy(context.Background(), src, t.TempDir(), &llb.CopyAction{Src: []string{"/missing"}, Dest: "/"})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("error = %v, want *NotFoundError", err)
	}
	if nf.Path != "/missing" || len(nf.Looked) != 1 || nf.Looked[0] != "missing" {
		t.Errorf("NotFoundError = %+v", nf)
	}
}

// A destination symlink that points outside the destination root resolves
// inside it, as in a chroot: nothing is written outside.
func TestCopyDestSymlinkStaysInside(t *testing.T) {
	needRoot(t)
	srcRoot, destRoot, outside := t.TempDir(), t.TempDir(), t.TempDir()
	tree(t, srcRoot, map[string]string{"etc/x": "X", "f": "F"})
	tree(t, destRoot, map[string]string{
		"abs": "-> " + outside, "rel": "-> ../../../../../../" + outside, "etc": "-> " + outside,
	})
	src := Source{Root: srcRoot, Context: true}
	for _, a := range []llb.CopyAction{
		{Src: []string{"f"}, Dest: "/abs/", CreateDestPath: true},
		{Src: []string{"f"}, Dest: "/rel/g", CreateDestPath: true},
		{Src: []string{"."}, Dest: "/", CopyDirContents: true},
		{Src: []string{"f"}, Dest: "/../../../../h"},
	} {
		if err := Copy(context.Background(), src, destRoot, &a); err != nil {
			t.Fatalf("copy %v to %s: %v", a.Src, a.Dest, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("copy wrote outside the destination root: %v", entries)
	}
	inside := filepath.Join(destRoot, outside)
	for _, p := range []string{"f", "g", "x"} {
		if _, err := os.Stat(filepath.Join(inside, p)); err != nil {
			t.Errorf("want %s inside the destination root: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(destRoot, "h")); err != nil || string(b) != "F" {
		t.Errorf("/../../h: %q, %v", b, err)
	}
}

func TestCopyHardlinksTimesOwners(t *testing.T) {
	needRoot(t)
	srcRoot, destRoot := t.TempDir(), t.TempDir()
	tree(t, srcRoot, map[string]string{"d/a": "data", "d/s": "-> a"})
	if err := os.Link(filepath.Join(srcRoot, "d/a"), filepath.Join(srcRoot, "d/b")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for _, p := range []string{"d/a", "d"} {
		if err := os.Chtimes(filepath.Join(srcRoot, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(filepath.Join(srcRoot, "d/a"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	// A stage source keeps owners.
	a := &llb.CopyAction{Src: []string{"d"}, Dest: "/out", CopyDirContents: true}
	if err := Copy(context.Background(), Source{Root: srcRoot}, destRoot, a); err != nil {
		t.Fatal(err)
	}
	sa, sb := statT(t, filepath.Join(destRoot, "out/a")), statT(t, filepath.Join(destRoot, "out/b"))
	if sa.Ino != sb.Ino || sa.Nlink != 2 {
		t.Errorf("hard link not kept: inodes %d and %d, nlink %d", sa.Ino, sb.Ino, sa.Nlink)
	}
	if sa.Uid != 1234 || sa.Gid != 5678 {
		t.Errorf("stage owner = %d:%d, want 1234:5678", sa.Uid, sa.Gid)
	}
	// The new destination directory is made, not copied: only what is
	// below it keeps the source's times.
	for _, p := range []string{"out/a"} {
		if got := mtime(t, filepath.Join(destRoot, p)); !got.Equal(old) {
			t.Errorf("%s mtime = %v, want %v", p, got, old)
		}
	}
	// The build context resets owners; Timestamp overrides times.
	ts := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	a = &llb.CopyAction{Src: []string{"d"}, Dest: "/ctx", CopyDirContents: true, Timestamp: &ts}
	if err := Copy(context.Background(), Source{Root: srcRoot, Context: true}, destRoot, a); err != nil {
		t.Fatal(err)
	}
	if st := statT(t, filepath.Join(destRoot, "ctx/a")); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("context owner = %d:%d, want 0:0", st.Uid, st.Gid)
	}
	for _, p := range []string{"ctx/a", "ctx/s", "ctx"} {
		if got := mtime(t, filepath.Join(destRoot, p)); !got.Equal(ts) {
			t.Errorf("%s mtime = %v, want %v", p, got, ts)
		}
	}
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
