package layer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/continuity/fs"
	"github.com/google/go-cmp/cmp"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/mount"
)

// treeDiffFunc compares the tree upper against lower ("" = empty) and
// writes the changes, as diffTrees does.
type treeDiffFunc func(ctx context.Context, t *tarWriter, lower, upper string) error

// continuityDiff is diffTrees done with continuity's fs.Changes, made as
// close to strata's layers as its callback allows: the unchanged parents
// of a change, which fs.Changes does not report, are written before it, a
// deletion becomes a whiteout, and the entries are put in strata's order.
func continuityDiff(ctx context.Context, t *tarWriter, lower, upper string) error {
	var changes []change
	written := map[string]bool{} // directories already in changes
	err := fs.Changes(ctx, lower, upper, func(k fs.ChangeKind, p string, fi os.FileInfo, err error) error {
		if err != nil || k == fs.ChangeKindUnmodified {
			return err
		}
		name := strings.TrimPrefix(p, "/")
		var parents []string
		for d := path.Dir(name); d != "." && !written[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for _, d := range slices.Backward(parents) {
			written[d] = true
			changes = append(changes, change{name: d})
		}
		if k == fs.ChangeKindDelete {
			dir, base := path.Split(name)
			changes = append(changes, change{name: dir + whiteoutPrefix + base, whiteout: true})
			return nil
		}
		if fi.IsDir() {
			written[name] = true
		}
		changes = append(changes, change{name: name})
		return nil
	})
	if err != nil {
		return err
	}
	// fs.Changes orders a whiteout by the name it hides, strata by its own.
	slices.SortStableFunc(changes, func(a, b change) int {
		return strings.Compare(strings.ReplaceAll(a.name, "/", "\x00"), strings.ReplaceAll(b.name, "/", "\x00"))
	})
	for _, c := range changes {
		var err error
		if c.whiteout {
			err = t.whiteout(c.name)
		} else {
			err = t.add(filepath.Join(upper, c.name), c.name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeTreeDiff is WriteDiff for a bind upper, comparing the trees with diff.
func writeTreeDiff(ctx context.Context, lower, upper []mount.Mount, diff treeDiffFunc) ([]byte, error) {
	src, ok := bindSource(upper)
	if !ok {
		return nil, fmt.Errorf("upper %v is not a bind mount", upper)
	}
	var buf bytes.Buffer
	t := newTarWriter(&buf, DiffOptions{})
	if err := withLowerRoot(lower, "", func(l string) error { return diff(ctx, t, l, src) }); err != nil {
		return nil, err
	}
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// commitWith is store.commit with the tree comparison done by diff.
func (s *store) commitWith(t *testing.T, name, parent string, fn func(root string), diff treeDiffFunc) []byte {
	t.Helper()
	ctx := context.Background()
	ms, err := s.sn.Prepare(ctx, "build-"+name, parent)
	must(t, err)
	must(t, mount.WithTemp(t.TempDir(), ms, func(root string) error { fn(root); return nil }))
	var layer []byte
	s.withView(t, parent, func(lower []mount.Mount) {
		layer, err = writeTreeDiff(ctx, lower, ms, diff)
		must(t, err)
	})
	must(t, s.sn.Commit(ctx, name, "build-"+name))
	return layer
}

// continuityMisses are the diff cases in which a layer made with
// fs.Changes is not what the naive snapshotter must write: fs.Changes
// compares only security.capability among the xattrs, and a directory by
// type, mode and owner but not mtime.
var continuityMisses = map[string]bool{"xattr only": true, "dir mtime only": true}

// TestTreeDiffAgainstContinuity runs diffCases (plus a directory whose mtime
// alone changed) on the naive snapshotter with diffTrees and with
// continuity's fs.Changes, and checks each layer two ways: its entries, and
// that applying it over the base gives the tree that was changed. diffTrees
// passes all; fs.Changes misses exactly continuityMisses, which is why the
// naive snapshotter keeps diffTrees.
func TestTreeDiffAgainstContinuity(t *testing.T) {
	needRoot(t)
	cases := slices.Clone(diffCases)
	old := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	cases = append(cases, struct {
		name   string
		change func(t *testing.T, root string)
		want   []string
		wantBy map[string][]string
	}{
		name:   "dir mtime only",
		change: func(t *testing.T, r string) { must(t, os.Chtimes(filepath.Join(r, "dir"), old, old)) },
		want:   []string{"dir/ dir 755 0:0"},
	})
	for _, impl := range []struct {
		name   string
		diff   treeDiffFunc
		misses map[string]bool
	}{
		{"strata", diffTrees, nil},
		{"continuity", continuityDiff, continuityMisses},
	} {
		t.Run(impl.name, func(t *testing.T) {
			src, dst := newStore(t, "naive"), newStore(t, "naive")
			base := src.commitWith(t, "base", "", func(r string) { baseTree(t, r) }, impl.diff)
			dst.apply(t, "base", "", base)
			for i, c := range cases {
				name := "case" + string(rune('a'+i))
				layer := src.commitWith(t, name, "base", func(r string) { c.change(t, r) }, impl.diff)
				dst.apply(t, name, "base", layer)
				want := c.want
				if w, ok := c.wantBy["naive"]; ok {
					want = w
				}
				d1 := cmp.Diff(want, entries(t, layer))
				d2 := cmp.Diff(src.tree(t, name), dst.tree(t, name))
				switch missed := d1 != "" || d2 != ""; {
				case missed && !impl.misses[c.name]:
					t.Errorf("%s: entries (-want +got):\n%s\ntree (-changed +applied):\n%s", c.name, d1, d2)
				case !missed && impl.misses[c.name]:
					t.Errorf("%s: now right; update continuityMisses", c.name)
				case missed:
					t.Logf("%s: misses as known: entries (-want +got):\n%s", c.name, d1)
				}
			}
		})
	}
}

// diffBenchTrees makes lower, 20 directories of 1000 small files, and
// upper, a copy of it (as the naive snapshotter makes one) in which 1% of
// the files were rewritten, 1% removed and 1% added.
func diffBenchTrees(b *testing.B) (lower, upper string) {
	b.Helper()
	dir := b.TempDir()
	lower, upper = filepath.Join(dir, "lower"), filepath.Join(dir, "upper")
	data := []byte(strings.Repeat("#", 200))
	for d := range 20 {
		sub := filepath.Join(lower, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := snapshot.CopyTree(lower, upper); err != nil {
		b.Fatal(err)
	}
	for d := range 20 {
		sub := filepath.Join(upper, fmt.Sprintf("d%02d", d))
		for i := 0; i < 1000; i += 100 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), []byte("changed"), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(filepath.Join(sub, fmt.Sprintf("f%04d", i+1))); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("n%04d", i)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return lower, upper
}

// BenchmarkTreeDiff compares diffTrees with continuityDiff on diffBenchTrees;
// see diffTrees for the numbers.
func BenchmarkTreeDiff(b *testing.B) {
	lower, upper := diffBenchTrees(b)
	ctx := context.Background()
	for _, impl := range []struct {
		name string
		diff treeDiffFunc
	}{
		{"strata", diffTrees},
		{"continuity", continuityDiff},
	} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := testutil.CPUTime()
			for b.Loop() {
				t := newTarWriter(io.Discard, DiffOptions{})
				if err := impl.diff(ctx, t, lower, upper); err != nil {
					b.Fatal(err)
				}
				if t.n != 20*(1+10+10+10) {
					b.Fatalf("%d entries", t.n)
				}
			}
			b.ReportMetric(float64(testutil.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
