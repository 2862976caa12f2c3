package layer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/mount"
	"golang.org/x/sys/unix"
)

// diffCases change baseTree through a mount; want lists the layer entries,
// with wantBy overriding it for a snapshotter whose diff differs.
var diffCases = []struct {
	name   string
	change func(t *testing.T, root string)
	want   []string
	wantBy map[string][]string
}{
	{
		name:   "add file",
		change: func(t *testing.T, r string) { write(t, filepath.Join(r, "new"), "n", 0o640) },
		want:   []string{`new file 640 0:0 "n"`},
	},
	{
		name:   "modify file",
		change: func(t *testing.T, r string) { write(t, filepath.Join(r, "mod"), "22", 0o644) },
		want:   []string{`mod file 644 0:0 "22"`},
	},
	{
		name:   "modify nested file",
		change: func(t *testing.T, r string) { write(t, filepath.Join(r, "d/f"), "ff", 0o644) },
		want:   []string{"d/ dir 755 0:0", `d/f file 644 0:0 "ff"`},
	},
	{
		name:   "delete file",
		change: func(t *testing.T, r string) { must(t, os.Remove(filepath.Join(r, "del"))) },
		want:   []string{`.wh.del file 644 0:0 ""`},
	},
	{
		name:   "delete dir",
		change: func(t *testing.T, r string) { must(t, os.RemoveAll(filepath.Join(r, "dir"))) },
		want:   []string{`.wh.dir file 644 0:0 ""`},
	},
	{
		name: "opaque dir",
		change: func(t *testing.T, r string) {
			must(t, os.RemoveAll(filepath.Join(r, "dir")))
			write(t, filepath.Join(r, "dir/c"), "c", 0o644)
		},
		want: []string{"dir/ dir 755 0:0", `dir/.wh..wh..opq file 644 0:0 ""`, `dir/c file 644 0:0 "c"`},
		wantBy: map[string][]string{"naive": {
			"dir/ dir 755 0:0", `dir/.wh.a file 644 0:0 ""`, `dir/.wh.b file 644 0:0 ""`, `dir/c file 644 0:0 "c"`,
		}},
	},
	{
		name:   "symlink",
		change: func(t *testing.T, r string) { must(t, os.Symlink("../keep", filepath.Join(r, "ln"))) },
		want:   []string{"ln symlink 777 0:0 -> ../keep"},
	},
	{
		name: "hardlink",
		change: func(t *testing.T, r string) {
			write(t, filepath.Join(r, "h1"), "h", 0o600)
			must(t, os.Link(filepath.Join(r, "h1"), filepath.Join(r, "h2")))
		},
		want: []string{`h1 file 600 0:0 "h"`, "h2 link 600 0:0 -> h1"},
	},
	{
		name:   "chmod only",
		change: func(t *testing.T, r string) { must(t, unix.Chmod(filepath.Join(r, "keep"), 0o4750)) },
		want:   []string{`keep file 4750 0:0 "k" user.base=1`},
	},
	{
		name:   "chown only",
		change: func(t *testing.T, r string) { must(t, os.Lchown(filepath.Join(r, "keep"), 1000, 2000)) },
		want:   []string{`keep file 644 1000:2000 "k" user.base=1`},
	},
	{
		name: "xattr only",
		change: func(t *testing.T, r string) {
			must(t, unix.Lsetxattr(filepath.Join(r, "mod"), "user.x", []byte("v"), 0))
		},
		want: []string{`mod file 644 0:0 "1" user.x=v`},
	},
	{
		name: "file becomes dir",
		change: func(t *testing.T, r string) {
			must(t, os.Remove(filepath.Join(r, "keep")))
			write(t, filepath.Join(r, "keep/in"), "i", 0o644)
		},
		want: []string{"keep/ dir 755 0:0", `keep/in file 644 0:0 "i"`},
		// overlayfs marks a directory that replaces a deleted entry opaque.
		wantBy: map[string][]string{"overlay": {
			"keep/ dir 755 0:0", `keep/.wh..wh..opq file 644 0:0 ""`, `keep/in file 644 0:0 "i"`,
		}},
	},
	{
		name: "device and fifo",
		change: func(t *testing.T, r string) {
			must(t, unix.Mknod(filepath.Join(r, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
			must(t, unix.Chmod(filepath.Join(r, "zero"), 0o666))
			must(t, unix.Mkfifo(filepath.Join(r, "pipe"), 0o600))
		},
		want: []string{"pipe fifo 600 0:0", "zero char 666 0:0 1,5"},
	},
	{
		name:   "nothing",
		change: func(t *testing.T, r string) {},
		want:   nil,
	},
}

func TestWriteDiffCases(t *testing.T) {
	needRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			s := newStore(t, driver)
			s.commit(t, "base", "", func(r string) { baseTree(t, r) }, DiffOptions{})
			for i, c := range diffCases {
				t.Run(c.name, func(t *testing.T) {
					layer := s.commit(t, "case"+string(rune('a'+i)), "base", func(r string) { c.change(t, r) }, DiffOptions{})
					want := c.want
					if w, ok := c.wantBy[driver]; ok {
						want = w
					}
					if diff := cmp.Diff(want, entries(t, layer)); diff != "" {
						t.Errorf("entries (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestRoundTrip applies the layers one snapshotter writes into a fresh store
// of each kind and compares the resulting trees with the originals.
func TestRoundTrip(t *testing.T) {
	needRoot(t)
	for _, from := range drivers {
		for _, to := range drivers {
			t.Run(from+"-to-"+to, func(t *testing.T) {
				src, dst := newStore(t, from), newStore(t, to)
				base := src.commit(t, "base", "", func(r string) { baseTree(t, r) }, DiffOptions{})
				dst.apply(t, "base", "", base)
				if diff := cmp.Diff(src.tree(t, "base"), dst.tree(t, "base")); diff != "" {
					t.Fatalf("base tree (-written +applied):\n%s", diff)
				}
				for i, c := range diffCases {
					name := "case" + string(rune('a'+i))
					layer := src.commit(t, name, "base", func(r string) { c.change(t, r) }, DiffOptions{})
					dst.apply(t, name, "base", layer)
					if diff := cmp.Diff(src.tree(t, name), dst.tree(t, name)); diff != "" {
						t.Errorf("%s: tree (-written +applied):\n%s", c.name, diff)
					}
				}
			})
		}
	}
}

// TestDeterministic builds the same tree in two stores and checks that the
// clamped layers, and their compressed blobs, are byte for byte the same.
func TestDeterministic(t *testing.T) {
	needRoot(t)
	epoch := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			var layers [][]byte
			for range 2 {
				s := newStore(t, driver)
				s.commit(t, "base", "", func(r string) { baseTree(t, r) }, DiffOptions{})
				layer := s.commit(t, "child", "base", func(r string) {
					write(t, filepath.Join(r, "z/y/x"), "deep", 0o644)
					write(t, filepath.Join(r, "a-b"), "sibling", 0o644)
					write(t, filepath.Join(r, "a/b"), "nested", 0o644)
					must(t, os.Remove(filepath.Join(r, "del")))
					must(t, os.Link(filepath.Join(r, "a/b"), filepath.Join(r, "hard")))
				}, DiffOptions{SourceDateEpoch: &epoch})
				again := s.commit(t, "child2", "base", func(r string) {}, DiffOptions{SourceDateEpoch: &epoch})
				if len(entries(t, again)) != 0 {
					t.Fatalf("empty change gave entries %v", entries(t, again))
				}
				layers = append(layers, layer)
			}
			if !bytes.Equal(layers[0], layers[1]) {
				t.Fatalf("same tree, different layers:\n%v\n%v", entries(t, layers[0]), entries(t, layers[1]))
			}
			names := entries(t, layers[0])
			for i := range names {
				names[i] = strings.Fields(names[i])[0]
			}
			want := []string{".wh.del", "a/", "a/b", "a-b", "hard", "z/", "z/y/", "z/y/x"}
			if !slices.Equal(names, want) {
				t.Fatalf("entry order %v, want %v", names, want)
			}
			var blobs []string
			for _, l := range layers {
				_, desc, err := Compress(bytes.NewReader(l), &bytes.Buffer{})
				must(t, err)
				blobs = append(blobs, desc.Digest.String())
			}
			if blobs[0] != blobs[1] {
				t.Fatalf("same layer, different blobs %v", blobs)
			}
		})
	}
}

func TestWriteDiffClampsMtimes(t *testing.T) {
	needRoot(t)
	epoch := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	old := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore(t, "naive")
	layer := s.commit(t, "base", "", func(r string) {
		write(t, filepath.Join(r, "new"), "n", 0o644)
		write(t, filepath.Join(r, "old"), "o", 0o644)
		must(t, os.Chtimes(filepath.Join(r, "old"), old, old))
	}, DiffOptions{SourceDateEpoch: &epoch})
	got := map[string]time.Time{}
	forEachHeader(t, layer, func(name string, mtime time.Time) { got[name] = mtime })
	if !got["new"].Equal(epoch) || !got["old"].Equal(old) {
		t.Fatalf("mtimes %v: want new clamped to %v and old kept at %v", got, epoch, old)
	}
}

// TestWriteDiffOverlayLowerMounted diffs a bind upper against a lower that is
// an overlay of several layers, which WriteDiff has to mount to read.
func TestWriteDiffOverlayLowerMounted(t *testing.T) {
	needRoot(t)
	s := newStore(t, "overlay")
	ctx := context.Background()
	s.commit(t, "l1", "", func(r string) { write(t, filepath.Join(r, "a"), "1", 0o644) }, DiffOptions{})
	s.commit(t, "l2", "l1", func(r string) { write(t, filepath.Join(r, "b"), "2", 0o644) }, DiffOptions{})
	upper := t.TempDir()
	write(t, filepath.Join(upper, "b"), "2", 0o644)
	write(t, filepath.Join(upper, "c"), "3", 0o644)
	s.withView(t, "l2", func(lower []mount.Mount) {
		if lower[0].Type != "overlay" {
			t.Fatalf("view of two layers is %v, want an overlay", lower)
		}
		var buf bytes.Buffer
		bind := []mount.Mount{{Type: "bind", Source: upper, Options: []string{"rbind", "ro"}}}
		if _, err := WriteDiff(ctx, &buf, lower, bind, DiffOptions{}); err != nil {
			t.Fatal(err)
		}
		got := entries(t, buf.Bytes())
		// b differs in mtime only, so it is written; a is gone.
		want := []string{`.wh.a file 644 0:0 ""`, `b file 644 0:0 "2"`, `c file 644 0:0 "3"`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("entries (-want +got):\n%s", diff)
		}
	})
}
