package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A chain deeper than an overlay stacks mounts: its older layers come from
// a flattened copy, made once and shared by the snapshots above it, in
// which a file a later layer deleted stays deleted and an opaque
// directory stays opaque.
func TestConformanceDeepChain(t *testing.T) {
	forEach(t, func(t *testing.T, f *fixture) {
		if f.driver != "overlay" {
			t.Skip("only overlay stacks layers (naive copies each parent, slowly at this depth)")
		}
		ctx := context.Background()
		const depth = maxLowers + 40
		parent := ""
		for i := range depth {
			name := fmt.Sprintf("l%d", i)
			commitTree(t, f.sn, name, parent, func(root string) {
				writeFile(t, filepath.Join(root, fmt.Sprintf("f%d", i)), fmt.Sprint(i))
				switch i {
				case 1:
					writeFile(t, filepath.Join(root, "gone"), "x")
					writeFile(t, filepath.Join(root, "dir", "old"), "x")
				case 100:
					if err := os.Remove(filepath.Join(root, "gone")); err != nil {
						t.Fatal(err)
					}
					if err := os.RemoveAll(filepath.Join(root, "dir")); err != nil {
						t.Fatal(err)
					}
					writeFile(t, filepath.Join(root, "dir", "new"), "y")
				}
			})
			parent = name
		}
		check := func(root string) {
			for _, i := range []int{0, 1, 99, 100, 300, depth - 1} {
				wantFile(t, filepath.Join(root, fmt.Sprintf("f%d", i)), fmt.Sprint(i))
			}
			wantMissing(t, filepath.Join(root, "gone"))
			wantMissing(t, filepath.Join(root, "dir", "old"))
			wantFile(t, filepath.Join(root, "dir", "new"), "y")
		}
		ms, err := f.sn.View(ctx, "view", parent)
		if err != nil {
			t.Fatal(err)
		}
		withMount(t, ms, check)
		ms, err = f.sn.Prepare(ctx, "next", parent)
		if err != nil {
			t.Fatal(err)
		}
		withMount(t, ms, func(root string) {
			check(root)
			writeFile(t, filepath.Join(root, "top"), "t")
		})
		var flats []string
		if err := f.sn.Walk(ctx, func(i Info) error {
			if strings.HasPrefix(i.Name, FlatPrefix) {
				flats = append(flats, i.Name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(flats) != 1 { // one copy of the oldest flatStep layers, shared
			t.Errorf("flattened copies %v, want 1", flats)
		}
	})
}
