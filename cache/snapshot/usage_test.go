package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/continuity/fs"
	"github.com/strata-build/strata/internal/testutil"
	"golang.org/x/sys/unix"
)

// blocksOf is the allocated size of p, as diskUsage counts it.
func blocksOf(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestUsageOfCountsLinksOnce shows what `strata du` needs from UsageOf: a
// file hard-linked into two snapshots is counted once, in the first key
// that holds it, and each snapshot keeps its own size. continuity's
// fs.DiskUsage counts links once across roots too, but returns one total
// for all of them, so it cannot say which snapshot holds what.
func TestUsageOfCountsLinksOnce(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		big := strings.Repeat("x", 1<<20)
		commitTree(t, f.sn, "A", "", func(root string) {
			writeFile(t, filepath.Join(root, "shared"), big)
			writeFile(t, filepath.Join(root, "a"), "a")
		})
		commitTree(t, f.sn, "B", "", func(root string) { writeFile(t, filepath.Join(root, "b"), "b") })
		s := f.sn.(*snapshotter)
		dirs := map[string]string{}
		for _, k := range []string{"A", "B"} {
			r, err := s.record(k)
			if err != nil {
				t.Fatal(err)
			}
			dirs[k] = fsDir(s.dir(r.ID))
		}
		shared := filepath.Join(dirs["A"], "shared")
		if err := os.Link(shared, filepath.Join(dirs["B"], "shared")); err != nil {
			t.Fatal(err)
		}
		size := blocksOf(t, shared)
		if size < 1<<20 {
			t.Fatalf("shared file takes %d bytes on disk", size)
		}
		alone := map[string]Usage{}
		for _, k := range []string{"A", "B"} {
			u, err := f.sn.Usage(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			alone[k] = u
		}
		for _, order := range [][]string{{"A", "B"}, {"B", "A"}} {
			us, err := f.sn.UsageOf(ctx, order)
			if err != nil {
				t.Fatal(err)
			}
			first, second := order[0], order[1]
			if us[0] != alone[first] {
				t.Errorf("UsageOf(%v)[0] = %+v, want all of %s: %+v", order, us[0], first, alone[first])
			}
			want := Usage{Size: alone[second].Size - size, Inodes: alone[second].Inodes - 1}
			if us[1] != want {
				t.Errorf("UsageOf(%v)[1] = %+v, want %s without the shared file: %+v", order, us[1], second, want)
			}
			total, err := fs.DiskUsage(ctx, dirs[first], dirs[second])
			if err != nil {
				t.Fatal(err)
			}
			if sum := us[0].Size + us[1].Size; total.Size != sum || total.Inodes != us[0].Inodes+us[1].Inodes {
				t.Errorf("UsageOf(%v) adds up to %d bytes, %d inodes; fs.DiskUsage says %+v", order, sum, us[0].Inodes+us[1].Inodes, total)
			}
		}
	})
}

// usageTree writes a tree like a small root file system: 20 directories of
// 1000 small files each, and 500 of the files hard-linked once more.
func usageTree(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	links := filepath.Join(root, "links")
	if err := os.Mkdir(links, 0o755); err != nil {
		tb.Fatal(err)
	}
	data := []byte(strings.Repeat("#", 200))
	for d := range 20 {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for i := range 1000 {
			p := filepath.Join(dir, fmt.Sprintf("f%04d", i))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				tb.Fatal(err)
			}
			if i%40 == 0 {
				if err := os.Link(p, filepath.Join(links, fmt.Sprintf("d%02d-f%04d", d, i))); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	return root
}

// BenchmarkDiskUsage compares diskUsage with continuity's fs.DiskUsage on
// usageTree. Both count 512-byte blocks, follow ctx and count hard links
// once; see diskUsage for the numbers.
func BenchmarkDiskUsage(b *testing.B) {
	root := usageTree(b)
	ctx := context.Background()
	want, err := fs.DiskUsage(ctx, root)
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		du   func() (Usage, error)
	}{
		{"strata", func() (Usage, error) { return diskUsage(ctx, root, map[fileID]bool{}) }},
		{"continuity", func() (Usage, error) {
			u, err := fs.DiskUsage(ctx, root)
			return Usage{Size: u.Size, Inodes: u.Inodes}, err
		}},
	}
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := testutil.CPUTime()
			for b.Loop() {
				u, err := im.du()
				if err != nil {
					b.Fatal(err)
				}
				if u.Size != want.Size || u.Inodes != want.Inodes {
					b.Fatalf("usage %+v, fs.DiskUsage says %+v", u, want)
				}
			}
			b.ReportMetric(float64(testutil.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
