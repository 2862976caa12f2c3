package contenthash

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/llb"
)

func write(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var all = &llb.CopyAction{Src: []string{"."}, Dest: "/", CopyDirContents: true}

// counting opens a cache whose file reads are counted.
func counting(t testing.TB) (*Cache, *atomic.Int64) {
	t.Helper()
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	c.hashed = func(string) { n.Add(1) }
	return c, &n
}

func sum(t testing.TB, c *Cache, src local.Source, a *llb.CopyAction) Sum {
	t.Helper()
	s, err := c.Checksum(context.Background(), src, a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChecksumTracksContentNotTimes(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"a.txt": "hello", "dir/b.txt": "world"})
	src := local.Source{Root: root, Context: true}
	c, reads := counting(t)

	s1 := sum(t, c, src, all)
	if reads.Load() != 2 {
		t.Fatalf("cold checksum read %d files, want 2", reads.Load())
	}
	if s2 := sum(t, c, src, all); s2.Digest != s1.Digest || reads.Load() != 2 {
		t.Fatalf("warm checksum: digest %s (want %s), %d reads (want 2)", s2.Digest, s1.Digest, reads.Load())
	}

	// Touch only: re-read (mtime changed), same digest.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "a.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if s := sum(t, c, src, all); s.Digest != s1.Digest {
		t.Errorf("touch changed the digest")
	}
	if reads.Load() != 3 {
		t.Errorf("after touch: %d reads, want 3 (only a.txt re-read)", reads.Load())
	}

	// Same size, mtime set back: ctime still changes, so it is re-read.
	p := filepath.Join(root, "dir/b.txt")
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("WORLD"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	s3 := sum(t, c, src, all)
	if s3.Digest == s1.Digest {
		t.Fatal("same-size same-mtime edit kept the digest")
	}
	var changed []string
	for k, d := range s3.Files {
		if s1.Files[k] != d {
			changed = append(changed, k)
		}
	}
	if diff := cmp.Diff([]string{"dir/b.txt"}, changed); diff != "" {
		t.Errorf("changed files (-want +got):\n%s", diff)
	}
}

func TestChecksumPersists(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	write(t, root, map[string]string{"a": "1", "b": "2", "c": "3"})
	src := local.Source{Root: root}
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	s1 := sum(t, c, src, all)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	c2.hashed = func(string) { reads.Add(1) }
	if s2 := sum(t, c2, src, all); s2.Digest != s1.Digest || reads.Load() != 0 {
		t.Errorf("reopened cache: digest equal %v, %d reads (want 0)", s2.Digest == s1.Digest, reads.Load())
	}

	// A corrupt file starts an empty cache.
	if err := os.WriteFile(c.fileFor(root), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c3, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	c3.hashed = func(string) { reads.Add(1) }
	if s3 := sum(t, c3, src, all); s3.Digest != s1.Digest || reads.Load() != 3 {
		t.Errorf("corrupt cache: digest equal %v, %d reads (want 3)", s3.Digest == s1.Digest, reads.Load())
	}
	// A nil cache hashes everything.
	if s := sum(t, nil, src, all); s.Digest != s1.Digest {
		t.Errorf("nil cache gave another digest")
	}
}

func TestChecksumIgnoresExcluded(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"a.go": "package a", "build/out.bin": "x", "notes.log": "1"})
	ignore := []string{"build", "*.log"}
	a := &llb.CopyAction{Src: []string{"."}, Dest: "/", CopyDirContents: true, Excludes: []string{"*.tmp"}}
	before := sum(t, nil, local.Source{Root: root, Excludes: ignore, Context: true}, a)
	write(t, root, map[string]string{"build/out.bin": "changed", "build/new": "n", "notes.log": "2", "x.tmp": "t"})
	after := sum(t, nil, local.Source{Root: root, Excludes: ignore, Context: true}, a)
	if after.Digest != before.Digest {
		t.Errorf("excluded files changed the digest: %v", after.Files)
	}
	keys := make([]string, 0, len(after.Files))
	for k := range after.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if diff := cmp.Diff([]string{".", "a.go"}, keys); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	write(t, root, map[string]string{"a.go": "package b"})
	if s := sum(t, nil, local.Source{Root: root, Excludes: ignore, Context: true}, a); s.Digest == before.Digest {
		t.Error("content change kept the digest")
	}
}

func TestChecksumModeAndOwner(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"f": "x"})
	ctxSrc, stageSrc := local.Source{Root: root, Context: true}, local.Source{Root: root}
	a := &llb.CopyAction{Src: []string{"f"}, Dest: "/f"}
	c1, s1 := sum(t, nil, ctxSrc, a), sum(t, nil, stageSrc, a)
	if err := os.Chmod(filepath.Join(root, "f"), 0o755); err != nil {
		t.Fatal(err)
	}
	if sum(t, nil, ctxSrc, a).Digest == c1.Digest {
		t.Error("mode change kept the digest")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	if err := os.Chmod(filepath.Join(root, "f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "f"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	if sum(t, nil, ctxSrc, a).Digest != c1.Digest {
		t.Error("owner change in the build context changed the digest")
	}
	if sum(t, nil, stageSrc, a).Digest == s1.Digest {
		t.Error("owner change in a stage kept the digest")
	}
}

func BenchmarkChecksum10k(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{}
	for i := range 10000 {
		files[fmt.Sprintf("d%02d/f%05d.txt", i%100, i)] = strings.Repeat("x", i%4096)
	}
	write(b, root, files)
	src := local.Source{Root: root, Context: true}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			sum(b, nil, src, all)
		}
	})
	b.Run("warm", func(b *testing.B) {
		c, err := OpenCache(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		sum(b, c, src, all)
		for b.Loop() {
			sum(b, c, src, all)
		}
	})
	// reopen is a no-op rebuild in a new process: load the saved cache,
	// then checksum an unchanged tree.
	b.Run("reopen", func(b *testing.B) {
		dir := b.TempDir()
		c, err := OpenCache(dir)
		if err != nil {
			b.Fatal(err)
		}
		sum(b, c, src, all)
		if err := c.Save(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			c, err := OpenCache(dir)
			if err != nil {
				b.Fatal(err)
			}
			sum(b, c, src, all)
			if err := c.Save(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Files names each entry by where it is read from: its path in the build
// context, or its absolute path in a stage. Where the files land changes
// the Digest, not the names.
func TestChecksumFilesNameSources(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"app/main.go": "package main", "app/sub/x.go": "package sub", "other": "o"})
	keys := func(s Sum) []string {
		var out []string
		for k := range s.Files {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	contents := &llb.CopyAction{Src: []string{"app/"}, Dest: "/src/", CopyDirContents: true}
	ctx := sum(t, nil, local.Source{Root: root, Context: true}, contents)
	if diff := cmp.Diff([]string{"app", "app/main.go", "app/sub", "app/sub/x.go"}, keys(ctx)); diff != "" {
		t.Errorf("context source (-want +got):\n%s", diff)
	}
	stage := sum(t, nil, local.Source{Root: root}, &llb.CopyAction{Src: []string{"/app/sub", "other"}, Dest: "/dst/"})
	if diff := cmp.Diff([]string{"/app/sub", "/app/sub/x.go", "/other"}, keys(stage)); diff != "" {
		t.Errorf("stage source (-want +got):\n%s", diff)
	}
	elsewhere := sum(t, nil, local.Source{Root: root, Context: true}, &llb.CopyAction{Src: []string{"app/"}, Dest: "/elsewhere/"})
	if !cmp.Equal(keys(elsewhere), keys(ctx)) || elsewhere.Digest == ctx.Digest {
		t.Errorf("app copied as a directory: keys %v, digest equal to its contents' %v", keys(elsewhere), elsewhere.Digest == ctx.Digest)
	}
}
