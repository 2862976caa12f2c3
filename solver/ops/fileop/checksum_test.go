package fileop

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/cache/contenthash"
	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/llb"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	spec := map[string]string{}
	for k, v := range files {
		spec[k] = v
	}
	tree(t, root, spec)
}

func mustSum(t *testing.T, src local.Source, a *llb.CopyAction) contenthash.Sum {
	t.Helper()
	var c *contenthash.Cache
	s, err := c.Checksum(context.Background(), src, a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The checksum covers exactly the entries the copy writes, each under the
// context path it is read from.
func TestChecksumCoversCopiedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: copies set owners with chown")
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.txt": "a", "b.md": "b", "d/x.txt": "x", "d/e/y.txt": "y", "d/skip.log": "s", "ign/z": "z"})
	if err := os.Symlink("a.txt", filepath.Join(root, "d/ln")); err != nil {
		t.Fatal(err)
	}
	src := local.Source{Root: root, Excludes: []string{"ign", "**/*.log"}, Context: true}
	same := func(p string) string { return p }
	for _, tc := range []struct {
		a *llb.CopyAction
		// source is the context path a copied path was read from.
		source func(dest string) string
	}{
		{&llb.CopyAction{Src: []string{"."}, Dest: "/out/", CopyDirContents: true}, same},
		{&llb.CopyAction{Src: []string{"*.txt", "d"}, Dest: "/out/", AllowWildcard: true}, same},
		{&llb.CopyAction{Src: []string{"d/./e/y.txt", "a.txt"}, Dest: "/out/", Parents: true}, func(p string) string {
			if p == "e/y.txt" {
				return "d/e/y.txt"
			}
			return p
		}},
		{&llb.CopyAction{Src: []string{"d"}, Dest: "/out/", CopyDirContents: true, Excludes: []string{"e"}},
			func(p string) string { return path.Join("d", p) }},
	} {
		a := tc.a
		dest := t.TempDir()
		if err := Copy(context.Background(), src, dest, a); err != nil {
			t.Fatal(err)
		}
		var copied []string
		out := filepath.Join(dest, "out")
		filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(out, p)
			// With Parents the parent directories are made, not copied.
			if err == nil && !(a.Parents && d.IsDir()) {
				copied = append(copied, rel)
			}
			return err
		})
		var summed []string
		for k := range mustSum(t, src, a).Files {
			summed = append(summed, k)
		}
		if !a.CopyDirContents && !a.Parents {
			copied = copied[1:] // the destination directory itself is not a source entry
		}
		for i, p := range copied {
			copied[i] = tc.source(filepath.ToSlash(p))
		}
		sort.Strings(copied)
		sort.Strings(summed)
		if diff := cmp.Diff(copied, summed); diff != "" {
			t.Errorf("copy %v: copied vs checksummed (-copied +summed):\n%s", a.Src, diff)
		}
	}
}
