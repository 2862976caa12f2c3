package fileop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/llb"
)

func TestMkdirMkfileRm(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	root, outside := t.TempDir(), t.TempDir()
	tree(t, root, map[string]string{
		"etc/passwd": "app:x:1000:1000::/:/bin/sh\n", "out": "-> " + outside, "keep/x.tmp": "1", "keep/y.tmp": "2", "keep/z": "3",
	})
	ts := time.Date(2022, 2, 2, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		run  func() error
		err  string
	}{
		{"mkdir parents", func() error {
			return Mkdir(ctx, root, &llb.MkdirAction{Path: "/a/b/c", Mode: 0o750, MakeParents: true, Chown: &llb.Chown{User: "app"}, Timestamp: &ts})
		}, ""},
		{"mkdir parents existing", func() error { return Mkdir(ctx, root, &llb.MkdirAction{Path: "/a/b", Mode: 0o700, MakeParents: true}) }, ""},
		{"mkdir existing", func() error { return Mkdir(ctx, root, &llb.MkdirAction{Path: "/a/b", Mode: 0o700}) }, "mkdir /a/b: file exists"},
		{"mkdir missing parent", func() error { return Mkdir(ctx, root, &llb.MkdirAction{Path: "/n/o", Mode: 0o700}) }, "mkdir /n/o: no such file or directory"},
		{"mkdir through symlink", func() error {
			return Mkdir(ctx, root, &llb.MkdirAction{Path: "/out/d", Mode: 0o755, MakeParents: true})
		}, ""},
		{"mkfile", func() error {
			return Mkfile(ctx, root, &llb.MkfileAction{Path: "/a/f", Mode: 0o640, Data: []byte("data"), Chown: &llb.Chown{User: "1", Group: "2"}})
		}, ""},
		{"mkfile replaces", func() error {
			return Mkfile(ctx, root, &llb.MkfileAction{Path: "/a/f", Mode: 0o644, Data: []byte("new")})
		}, ""},
		{"mkfile through symlink", func() error {
			return Mkfile(ctx, root, &llb.MkfileAction{Path: "/out/g", Mode: 0o644, Data: []byte("g")})
		}, ""},
		{"mkfile on dir", func() error { return Mkfile(ctx, root, &llb.MkfileAction{Path: "/a/b", Mode: 0o644}) }, "mkfile /a/b: is a directory"},
		{"rm wildcard", func() error { return Rm(ctx, root, &llb.RmAction{Path: "/keep/*.tmp", AllowWildcard: true}) }, ""},
		{"rm symlink not target", func() error { return Rm(ctx, root, &llb.RmAction{Path: "/out"}) }, ""},
		{"rm missing", func() error { return Rm(ctx, root, &llb.RmAction{Path: "/nope"}) }, "rm /nope: no such file or directory"},
		{"rm missing allowed", func() error { return Rm(ctx, root, &llb.RmAction{Path: "/nope", AllowNotFound: true}) }, ""},
		{"rm root", func() error { return Rm(ctx, root, &llb.RmAction{Path: "/../"}) }, "rm /../: refusing to remove the root directory"},
	}
	for _, s := range steps {
		err := s.run()
		if (err == nil) != (s.err == "") || (err != nil && err.Error() != s.err) {
			t.Fatalf("%s: error = %v, want %q", s.name, err, s.err)
		}
	}
	got := describe(t, root)
	delete(got, "etc")
	delete(got, "etc/passwd")
	want := map[string]string{
		"a": "dir 0750 1000:1000", "a/b": "dir 0750 1000:1000", "a/b/c": "dir 0750 1000:1000",
		"a/f": "file 0644 0:0 new", "keep": "dir 0755 0:0", "keep/z": "file 0644 0:0 3",
	}
	for k := range got {
		if k == "tmp" || strings.HasPrefix(k, "tmp/") {
			delete(got, k) // below the chroot-resolved symlink target; checked below
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if !mtime(t, filepath.Join(root, "a/b/c")).Equal(ts) {
		t.Errorf("mkdir timestamp not applied")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "d")); err != nil {
		t.Errorf("mkdir through symlink: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, outside, "g")); err != nil || string(b) != "g" {
		t.Errorf("mkfile through symlink: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the root: %v", entries)
	}
}
