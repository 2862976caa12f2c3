package ops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// mergeWorkers are workers over fresh stores, one per snapshotter.
func mergeWorkers(t *testing.T) map[string]*Worker {
	t.Helper()
	testutil.RequireRoot(t)
	out := map[string]*Worker{}
	for name, mk := range map[string]func(string, *metadata.DB) (snapshot.Snapshotter, error){
		"overlay": snapshot.NewOverlay, "naive": snapshot.NewNaive,
	} {
		root := t.TempDir()
		db, err := metadata.Open(filepath.Join(root, "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		sn, err := mk(filepath.Join(root, "snapshots"), db)
		if err != nil {
			t.Fatalf("%s snapshotter: %v", name, err)
		}
		cs, err := content.Open(filepath.Join(root, "content"))
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(root, "tmp")
		if err := os.Mkdir(tmp, 0o700); err != nil {
			t.Fatal(err)
		}
		out[name] = &Worker{Snapshotter: sn, Content: cs, Records: cache.NewRecords(db), TempDir: tmp}
	}
	return out
}

// commitTree commits a snapshot over parent after fn changed its root.
func commitTree(t *testing.T, w *Worker, parent string, fn func(root string) error) string {
	t.Helper()
	ctx := context.Background()
	active := randomID("test-")
	ms, err := w.Snapshotter.Prepare(ctx, active, parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.WithTemp(w.TempDir, ms, fn); err != nil {
		t.Fatal(err)
	}
	ref, err := w.commit(ctx, active)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Snapshot
}

// writeFiles writes name -> content under root; a name ending in "/" is a
// directory, an empty content with "-" removes the path.
func writeFiles(files map[string]string) func(root string) error {
	return func(root string) error {
		for name, data := range files {
			p := filepath.Join(root, name)
			switch {
			case data == "-":
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			case strings.HasSuffix(name, "/"):
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
			default:
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// mergedTree returns path -> content ("dir" for directories) of a snapshot.
func mergedTree(t *testing.T, w *Worker, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := w.withView(context.Background(), &Ref{Snapshot: name}, func(root string) error {
		return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if fi.IsDir() {
				out[rel] = "dir"
				return nil
			}
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runMerge(t *testing.T, w *Worker, refs ...*Ref) (*Ref, error) {
	t.Helper()
	v := &llb.Vertex{Op: &llb.MergeOp{}, Inputs: make([]*llb.Vertex, len(refs))}
	op, err := w.Resolve(v)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]solver.Result, len(refs))
	for i, r := range refs {
		ins[i] = r
	}
	r, err := op.Exec(context.Background(), ins)
	if err != nil {
		return nil, err
	}
	return refOf(r), nil
}

func wantTree(t *testing.T, got, want map[string]string) {
	t.Helper()
	for p, d := range want {
		if got[p] != d {
			t.Errorf("%s = %q, want %q", p, got[p], d)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s (%q)", p, got[p])
		}
	}
}

// A tree made on scratch lands on the bottom as one layer: its files replace
// the bottom's (a file over a directory too), and the merged snapshot's
// layer record is the upper's, blob and diff ID.
func TestMergeOneUpperReusesItsLayer(t *testing.T) {
	for name, w := range mergeWorkers(t) {
		t.Run(name, func(t *testing.T) {
			bottom := commitTree(t, w, "", writeFiles(map[string]string{"app/keep": "old", "app/over": "base", "data/x": "x"}))
			upper := commitTree(t, w, "", writeFiles(map[string]string{"app/over": "new", "data": "file", "etc/motd": "hi"}))
			got, err := runMerge(t, w, &Ref{Snapshot: bottom}, &Ref{Snapshot: upper})
			if err != nil {
				t.Fatal(err)
			}
			wantTree(t, mergedTree(t, w, got.Snapshot), map[string]string{
				"app": "dir", "app/keep": "old", "app/over": "new", "data": "file", "etc": "dir", "etc/motd": "hi",
			})
			info, err := w.Snapshotter.Stat(context.Background(), got.Snapshot)
			if err != nil || info.Parent != bottom {
				t.Fatalf("merged snapshot %+v (%v), want parent %s", info, err, bottom)
			}
			ul, err := w.Records.Layer(upper)
			if err != nil || ul == nil || ul.Empty {
				t.Fatalf("layer record of the upper: %+v, %v", ul, err)
			}
			ml, err := w.Records.Layer(got.Snapshot)
			if err != nil || ml == nil {
				t.Fatalf("layer record of the merge: %+v, %v", ml, err)
			}
			if ml.Blob.Digest != ul.Blob.Digest || ml.DiffID != ul.DiffID {
				t.Errorf("merged layer %s/%s, upper's %s/%s", ml.Blob.Digest, ml.DiffID, ul.Blob.Digest, ul.DiffID)
			}
			if _, err := w.Content.Info(context.Background(), ul.Blob.Digest); err != nil {
				t.Errorf("upper's blob is not stored: %v", err)
			}
		})
	}
}

// An upper with a chain applies every layer in order, deletions included;
// with more than one layer applied, the merge records no layer of its own.
func TestMergeUpperChainAndScratch(t *testing.T) {
	for name, w := range mergeWorkers(t) {
		t.Run(name, func(t *testing.T) {
			bottom := commitTree(t, w, "", writeFiles(map[string]string{"keep": "k", "b/old": "o"}))
			u1 := commitTree(t, w, "", writeFiles(map[string]string{"b/one": "1", "b/two": "2"}))
			u2 := commitTree(t, w, u1, writeFiles(map[string]string{"b/one": "-", "b/three": "3"}))
			got, err := runMerge(t, w, &Ref{Snapshot: bottom}, &Ref{}, &Ref{Snapshot: u2})
			if err != nil {
				t.Fatal(err)
			}
			wantTree(t, mergedTree(t, w, got.Snapshot), map[string]string{
				"keep": "k", "b": "dir", "b/old": "o", "b/two": "2", "b/three": "3",
			})
			if l, err := w.Records.Layer(got.Snapshot); err != nil || l != nil {
				t.Errorf("merge of two layers recorded %+v (%v), want none", l, err)
			}
			// Scratch under one tree is that tree.
			if got, err := runMerge(t, w, &Ref{}, &Ref{Snapshot: u1}); err != nil || got.Snapshot != u1 {
				t.Errorf("scratch + %s = %+v (%v)", u1, got, err)
			}
			if _, err := runMerge(t, w, &Ref{Snapshot: bottom}, &Ref{Dir: "/tmp/ctx"}); err == nil ||
				err.Error() != "merge input 1: host directory /tmp/ctx is not a snapshot" {
				t.Errorf("host dir input: %v", err)
			}
		})
	}
}
