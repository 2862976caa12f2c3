package snapshot

import (
	"context"

	"path/filepath"
	"testing"

	"github.com/strata-build/strata/mount"
)

func TestOverlayDir(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		commitTree(t, f.sn, "A", "", func(root string) { writeFile(t, filepath.Join(root, "a"), "a") })
		commitTree(t, f.sn, "B", "A", func(root string) { writeFile(t, filepath.Join(root, "b"), "b") })
		active, err := f.sn.Prepare(ctx, "C", "B")
		if err != nil {
			t.Fatal(err)
		}
		view, err := f.sn.View(ctx, "view-B", "B")
		if err != nil {
			t.Fatal(err)
		}
		viewA, err := f.sn.View(ctx, "view-A", "A")
		if err != nil {
			t.Fatal(err)
		}
		dirC, okC := OverlayDir(active)
		dirB, okB := OverlayDir(view)
		_, okA := OverlayDir(viewA)
		if f.driver == "naive" {
			if okC || okB || okA {
				t.Fatalf("naive snapshots have no overlay dir: got %v %v %v", okC, okB, okA)
			}
			return
		}
		if !okC || !okB || okA {
			t.Fatalf("OverlayDir ok = %v (active), %v (view over B), %v (bind view over A); want true, true, false", okC, okB, okA)
		}
		// B's own dir holds b but not its parent's a.
		wantFile(t, filepath.Join(dirB, "b"), "b")
		wantMissing(t, filepath.Join(dirB, "a"))
		// What is written through C's mount lands in C's dir alone.
		withMount(t, active, func(root string) { writeFile(t, filepath.Join(root, "c"), "c") })
		wantFile(t, filepath.Join(dirC, "c"), "c")
		wantMissing(t, filepath.Join(dirC, "b"))
		if dirB == dirC {
			t.Fatalf("view over B and active C share dir %s", dirB)
		}
	})
}

func TestOverlayDirRelative(t *testing.T) {
	for _, tc := range []struct {
		m    mount.Mount
		want string
		ok   bool
	}{
		{mount.Mount{Type: "overlay", Options: []string{"index=off", "lowerdir=x/fs:y/fs", "upperdir=u/fs", "workdir=u/work"}, Dir: "/s"}, "/s/u/fs", true},
		{mount.Mount{Type: "overlay", Options: []string{"lowerdir=x/fs:y/fs"}, Dir: "/s"}, "/s/x/fs", true},
		{mount.Mount{Type: "overlay", Options: []string{"lowerdir=/abs/fs"}}, "/abs/fs", true},
		{mount.Mount{Type: "bind", Source: "/abs/fs", Options: []string{"rbind", "ro"}}, "", false},
		{mount.Mount{Type: "overlay", Options: []string{"index=off"}}, "", false},
	} {
		got, ok := OverlayDir([]mount.Mount{tc.m})
		if got != tc.want || ok != tc.ok {
			t.Errorf("OverlayDir(%v) = %q, %v; want %q, %v", tc.m.Options, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := OverlayDir(nil); ok {
		t.Error("OverlayDir(nil) is ok")
	}
}
