package ops

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// runCopy keys and runs a COPY of the whole context dir into /app over base,
// as the solver does: checksum first, then Exec.
func runCopy(t *testing.T, w *Worker, base, dir string) string {
	t.Helper()
	ctx := context.Background()
	v := &llb.Vertex{Op: &llb.FileOp{Base: 0, Actions: []llb.FileAction{{Copy: &llb.CopyAction{
		Source: 1, Src: []string{"."}, Dest: "/app/", CopyDirContents: true, CreateDestPath: true}}}},
		Inputs: []*llb.Vertex{nil, nil}}
	op, err := w.Resolve(v)
	if err != nil {
		t.Fatal(err)
	}
	ins := []solver.Result{&Ref{Snapshot: base}, &Ref{Dir: dir}}
	cm, err := op.CacheMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Deps[1].Content(ctx, ins[1]); err != nil {
		t.Fatal(err)
	}
	r, err := op.Exec(ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	return refOf(r).Snapshot
}

// ownInode is the inode of rel in the committed snapshot name's own
// directory, 0 when it is not there.
func ownInode(t *testing.T, w *Worker, name, rel string) uint64 {
	t.Helper()
	key := randomID("test-view-")
	ms, err := w.Snapshotter.View(context.Background(), key, name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Snapshotter.Remove(context.Background(), key)
	dir, ok := snapshot.OverlayDir(ms)
	if !ok {
		t.Fatalf("snapshot %s has no overlay dir", name)
	}
	fi, err := os.Lstat(filepath.Join(dir, rel))
	if err != nil {
		return 0
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestCopyReusesUnchangedFiles(t *testing.T) {
	for name, w := range mergeWorkers(t) {
		t.Run(name, func(t *testing.T) {
			base := commitTree(t, w, "", writeFiles(map[string]string{"etc/": "", "app/old": "base"}))
			dir := t.TempDir()
			if err := writeFiles(map[string]string{"a": "A", "sub/b": "B", "c": "C"})(dir); err != nil {
				t.Fatal(err)
			}
			first := runCopy(t, w, base, dir)
			if err := os.WriteFile(filepath.Join(dir, "c"), []byte("C2"), 0o644); err != nil {
				t.Fatal(err)
			}
			second := runCopy(t, w, base, dir)
			wantTree(t, mergedTree(t, w, second), map[string]string{
				"etc": "dir", "app": "dir", "app/old": "base", "app/a": "A", "app/sub": "dir", "app/sub/b": "B", "app/c": "C2"})
			wantTree(t, mergedTree(t, w, first), map[string]string{
				"etc": "dir", "app": "dir", "app/old": "base", "app/a": "A", "app/sub": "dir", "app/sub/b": "B", "app/c": "C"})
			if name != "overlay" {
				return
			}
			for rel, shared := range map[string]bool{"app/a": true, "app/sub/b": true, "app/c": false} {
				i1, i2 := ownInode(t, w, first, rel), ownInode(t, w, second, rel)
				if i1 == 0 || i2 == 0 || (i1 == i2) != shared {
					t.Errorf("%s: inodes %d and %d, want shared = %v", rel, i1, i2, shared)
				}
			}
			// Over another parent nothing is reused.
			other := commitTree(t, w, "", writeFiles(map[string]string{"etc/": ""}))
			third := runCopy(t, w, other, dir)
			if i1, i3 := ownInode(t, w, first, "app/a"), ownInode(t, w, third, "app/a"); i1 == i3 {
				t.Errorf("a copy over another parent shares inode %d", i1)
			}
		})
	}
}
