package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/mount"
)

// helperEnv makes the test binary a short-lived process that prepares one
// snapshot and exits without cleaning up: a process that died.
const helperEnv = "STRATA_SNAPSHOT_TEST_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		if err := runHelper(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(spec string) error {
	f := strings.Split(spec, "\n")
	db, err := metadata.Open(f[2])
	if err != nil {
		return err
	}
	s, err := open(f[0], f[1], db)
	if err != nil {
		return err
	}
	_, err = s.Prepare(context.Background(), f[3], "")
	return err
}

func open(driver, root string, db *metadata.DB) (Snapshotter, error) {
	if driver == "overlay" {
		return NewOverlay(root, db)
	}
	return NewNaive(root, db)
}

// fixture is one snapshotter under test with its root and DB.
type fixture struct {
	driver, root, dbPath string
	db                   *metadata.DB
	sn                   Snapshotter
}

func (f *fixture) reopen(t *testing.T) Snapshotter {
	t.Helper()
	s, err := open(f.driver, f.root, f.db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forEach runs test against both snapshotters, as root (they mount).
func forEach(t *testing.T, test func(t *testing.T, f *fixture)) {
	if os.Geteuid() != 0 {
		t.Skip("snapshot conformance needs root: it mounts the snapshots")
	}
	for _, driver := range []string{"overlay", "naive"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			f := &fixture{driver: driver, root: filepath.Join(dir, "snapshots"), dbPath: filepath.Join(dir, "meta.db")}
			var err error
			if f.db, err = metadata.Open(f.dbPath); err != nil {
				t.Fatal(err)
			}
			f.sn = f.reopen(t)
			test(t, f)
		})
	}
}

// withMount mounts ms on a temporary directory for the duration of fn.
func withMount(t *testing.T, ms []mount.Mount, fn func(root string)) {
	t.Helper()
	if err := mount.WithTemp(t.TempDir(), ms, func(root string) error { fn(root); return nil }); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantFile(t *testing.T, p, data string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != data {
		t.Fatalf("%s = %q, want %q", p, b, data)
	}
}

func wantMissing(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: want it missing, got err %v", p, err)
	}
}

// commitTree prepares key over parent, lets fn change it through a real
// mount and commits it as name.
func commitTree(t *testing.T, sn Snapshotter, name, parent string, fn func(root string)) {
	t.Helper()
	ctx := context.Background()
	key := "build-" + name
	ms, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		t.Fatal(err)
	}
	withMount(t, ms, fn)
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceLayers(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		commitTree(t, f.sn, "A", "", func(root string) {
			writeFile(t, filepath.Join(root, "keep"), "a")
			writeFile(t, filepath.Join(root, "over"), "a")
			writeFile(t, filepath.Join(root, "gone"), "a")
			writeFile(t, filepath.Join(root, "dir/inner"), "a")
		})
		commitTree(t, f.sn, "B", "A", func(root string) {
			wantFile(t, filepath.Join(root, "keep"), "a")
			wantFile(t, filepath.Join(root, "dir/inner"), "a")
			writeFile(t, filepath.Join(root, "over"), "b")
			if err := os.Remove(filepath.Join(root, "gone")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(root, "dir")); err != nil {
				t.Fatal(err)
			}
		})
		commitTree(t, f.sn, "C", "B", func(root string) {
			writeFile(t, filepath.Join(root, "over"), "c")
			writeFile(t, filepath.Join(root, "dir/new"), "c")
		})
		ms, err := f.sn.View(ctx, "view", "C")
		if err != nil {
			t.Fatal(err)
		}
		withMount(t, ms, func(root string) {
			wantFile(t, filepath.Join(root, "keep"), "a")
			wantFile(t, filepath.Join(root, "over"), "c")
			wantFile(t, filepath.Join(root, "dir/new"), "c")
			wantMissing(t, filepath.Join(root, "gone"))
			wantMissing(t, filepath.Join(root, "dir/inner"))
			err := os.WriteFile(filepath.Join(root, "x"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Fatalf("write into a view: got %v, want EROFS", err)
			}
		})
		// A view of the first layer alone, and of a parentless empty tree.
		for parent, want := range map[string]string{"A": "a", "": ""} {
			ms, err := f.sn.View(ctx, "view-"+parent, parent)
			if err != nil {
				t.Fatal(err)
			}
			withMount(t, ms, func(root string) {
				if want == "" {
					des, err := os.ReadDir(root)
					if err != nil || len(des) != 0 {
						t.Fatalf("empty view has %v (err %v)", des, err)
					}
				} else {
					wantFile(t, filepath.Join(root, "over"), want)
				}
				if err := os.Mkdir(filepath.Join(root, "x"), 0o755); !errors.Is(err, unix.EROFS) {
					t.Fatalf("mkdir in a view: got %v, want EROFS", err)
				}
			})
		}
		info, err := f.sn.Stat(ctx, "view")
		if err != nil {
			t.Fatal(err)
		}
		if info.Kind != KindView || info.Parent != "C" || info.Name != "view" || info.Created.IsZero() {
			t.Fatalf("stat view = %+v", info)
		}
		if info, err = f.sn.Stat(ctx, "B"); err != nil || info.Kind != KindCommitted || info.Parent != "A" {
			t.Fatalf("stat B = %+v, %v", info, err)
		}
	})
}

func TestConformanceMountsAgain(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		commitTree(t, f.sn, "base", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "base") })
		ms, err := f.sn.Prepare(ctx, "work", "base")
		if err != nil {
			t.Fatal(err)
		}
		withMount(t, ms, func(root string) { writeFile(t, filepath.Join(root, "g"), "work") })
		again, err := f.sn.Mounts(ctx, "work")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(ms) {
			t.Fatalf("Mounts = %v, Prepare gave %v", again, ms)
		}
		withMount(t, again, func(root string) {
			wantFile(t, filepath.Join(root, "f"), "base")
			wantFile(t, filepath.Join(root, "g"), "work")
		})
		if _, err := f.sn.Mounts(ctx, "base"); err == nil {
			t.Fatal("Mounts of a committed snapshot succeeded")
		}
		u, err := f.sn.Usage(ctx, "work")
		if err != nil {
			t.Fatal(err)
		}
		if u.Inodes < 2 || u.Size <= 0 {
			t.Fatalf("usage of work = %+v", u)
		}
	})
}

func TestConformanceErrors(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.sn.Prepare(ctx, "a", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sn.Prepare(ctx, "a", ""); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("prepare a twice: %v", err)
		}
		if _, err := f.sn.Prepare(ctx, "b", "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("prepare over a missing parent: %v", err)
		}
		if _, err := f.sn.Prepare(ctx, "b", "a"); err == nil || !strings.Contains(err.Error(), "not committed") {
			t.Fatalf("prepare over an active parent: %v", err)
		}
		if _, err := f.sn.Stat(ctx, "b"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("failed prepare left a record: %v", err)
		}
		if err := f.sn.Commit(ctx, "x", "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("commit a missing key: %v", err)
		}
		if _, err := f.sn.View(ctx, "v", ""); err != nil {
			t.Fatal(err)
		}
		if err := f.sn.Commit(ctx, "x", "v"); err == nil {
			t.Fatal("committing a view succeeded")
		}
		if err := f.sn.Remove(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("remove a missing key: %v", err)
		}
		if _, err := f.sn.Usage(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("usage of a missing key: %v", err)
		}
	})
}

func TestConformanceRemove(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		commitTree(t, f.sn, "A", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "a") })
		commitTree(t, f.sn, "B", "A", func(root string) { writeFile(t, filepath.Join(root, "g"), "b") })
		if _, err := f.sn.View(ctx, "v", "B"); err != nil {
			t.Fatal(err)
		}
		if err := f.sn.Remove(ctx, "A"); !errors.Is(err, ErrHasChildren) {
			t.Fatalf("remove A with child B: %v", err)
		}
		if err := f.sn.Remove(ctx, "B"); !errors.Is(err, ErrHasChildren) {
			t.Fatalf("remove B with view v: %v", err)
		}
		for _, k := range []string{"v", "B", "A"} {
			if err := f.sn.Remove(ctx, k); err != nil {
				t.Fatalf("remove %s: %v", k, err)
			}
		}
		var names []string
		if err := f.sn.Walk(ctx, func(i Info) error { names = append(names, i.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(names) != 0 {
			t.Fatalf("after removing all, Walk gives %v", names)
		}
		for _, d := range []string{"snapshots", "locks"} {
			des, err := os.ReadDir(filepath.Join(f.root, d))
			if err != nil || len(des) != 0 {
				t.Fatalf("%s left behind: %v (err %v)", d, des, err)
			}
		}
	})
}

func TestConformanceWalk(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		commitTree(t, f.sn, "c1", "", func(string) {})
		if _, err := f.sn.Prepare(ctx, "a1", "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sn.View(ctx, "b1", "c1"); err != nil {
			t.Fatal(err)
		}
		var got []string
		err := f.sn.Walk(ctx, func(i Info) error {
			got = append(got, fmt.Sprintf("%s:%s:%s", i.Name, i.Kind, i.Parent))
			_, err := f.sn.Stat(ctx, i.Name) // fn may call back
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a1:active:c1", "b1:view:c1", "c1:committed:"}
		if !slices.Equal(got, want) {
			t.Fatalf("Walk = %v, want %v", got, want)
		}
	})
}

// TestConformanceCommitRace commits the same name from many keys through two
// snapshotters sharing one root: exactly one wins, the others get
// errdefs.ErrAlreadyExists and remove their key.
func TestConformanceCommitRace(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		other := f.reopen(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			sn := f.sn
			if i%2 == 1 {
				sn = other
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("k%d", i)
				if _, err := sn.Prepare(ctx, key, ""); err != nil {
					errs[i] = err
					return
				}
				errs[i] = sn.Commit(ctx, "step", key)
				if errors.Is(errs[i], errdefs.ErrAlreadyExists) {
					if err := sn.Remove(ctx, key); err != nil {
						errs[i] = err
					}
				}
			}()
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, errdefs.ErrAlreadyExists):
				t.Fatalf("k%d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d commits won, want 1", won)
		}
		var names []string
		_ = f.sn.Walk(ctx, func(i Info) error { names = append(names, i.Name); return nil })
		if !slices.Equal(names, []string{"step"}) {
			t.Fatalf("snapshots after the race: %v", names)
		}
	})
}

// TestConformanceSweep checks that Sweep removes the active snapshot of a
// process that exited and the directories without records, and keeps live
// active snapshots, views and committed ones.
func TestConformanceSweep(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join([]string{f.driver, f.root, f.dbPath, "dead"}, "\n"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helper process: %v: %s", err, out)
		}
		if info, err := f.sn.Stat(ctx, "dead"); err != nil || info.Kind != KindActive {
			t.Fatalf("helper's snapshot: %+v, %v", info, err)
		}
		commitTree(t, f.sn, "kept", "", func(root string) { writeFile(t, filepath.Join(root, "f"), "x") })
		if _, err := f.sn.Prepare(ctx, "alive", "kept"); err != nil {
			t.Fatal(err)
		}
		other := f.reopen(t)
		if _, err := other.View(ctx, "alive-elsewhere", "kept"); err != nil {
			t.Fatal(err)
		}
		stray := filepath.Join(f.root, "snapshots", "stray")
		writeFile(t, filepath.Join(stray, "fs", "junk"), "junk")

		if err := f.sn.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sn.Stat(ctx, "dead"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("dead process's snapshot survived Sweep: %v", err)
		}
		wantMissing(t, stray)
		for _, k := range []string{"kept", "alive", "alive-elsewhere"} {
			if _, err := f.sn.Stat(ctx, k); err != nil {
				t.Fatalf("Sweep removed %s: %v", k, err)
			}
		}
		des, _ := os.ReadDir(filepath.Join(f.root, "snapshots"))
		if len(des) != 3 {
			t.Fatalf("snapshot dirs after Sweep: %v, want 3", des)
		}
		// Once its holder lets go (as a dying process would), the view goes too.
		o := other.(*snapshotter)
		o.mu.Lock()
		for _, lk := range o.locks {
			lk.Close()
		}
		clear(o.locks)
		o.mu.Unlock()
		if err := f.sn.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sn.Stat(ctx, "alive-elsewhere"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("released view survived Sweep: %v", err)
		}
		if _, err := f.sn.Stat(ctx, "alive"); err != nil {
			t.Fatalf("Sweep removed a live snapshot: %v", err)
		}
	})
}

func TestNewPicksOneDriverPerRoot(t *testing.T) {
	dir := t.TempDir()
	db, err := metadata.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if _, err := NewNaive(root, db); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		_, err := NewOverlay(root, db)
		if err == nil || !strings.Contains(err.Error(), "belongs to the naive snapshotter") {
			t.Fatalf("overlay over a naive root: %v", err)
		}
	}
	s, err := New(root, db)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*snapshotter).drv.name(); got != "naive" {
		t.Fatalf("New on a naive root gave %s", got)
	}
}
