package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/strata-build/strata/llb"
)

// cancelAfter is a context whose Err is nil for its first n calls and
// context.Canceled from then on: it is cancelled in the middle of a walk,
// at a point the test chooses.
type cancelAfter struct {
	context.Context
	n     int64
	calls atomic.Int64
}

func newCancelAfter(n int64) *cancelAfter {
	return &cancelAfter{Context: context.Background(), n: n}
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.n {
		return context.Canceled
	}
	return nil
}

// bigTree makes nested/dNN/fNN.txt (many small directories) and
// flat/fNNNN.txt (one directory far larger than checkEvery).
func bigTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for d := range 30 {
		dir := filepath.Join(root, "nested", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 30 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.txt", f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	flat := filepath.Join(root, "flat")
	if err := os.Mkdir(flat, 0o755); err != nil {
		t.Fatal(err)
	}
	for f := range 8 * checkEvery {
		if err := os.WriteFile(filepath.Join(flat, fmt.Sprintf("f%04d.txt", f)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A cancelled context stops every walk of the tree with context.Canceled,
// at the first look at the context after the cancellation: within one
// directory, or checkEvery entries of a large one.
func TestCancelStopsWalks(t *testing.T) {
	root := bigTree(t)
	src := Source{Root: root}
	all := &llb.CopyAction{Src: []string{"."}, CopyDirContents: true}
	glob := &llb.CopyAction{Src: []string{"**/*.txt"}, AllowWildcard: true}
	sel, err := Select(t.Context(), src, all)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := sel.AppendEntries(t.Context(), &sel.Matches[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 900+8*checkEvery {
		t.Fatalf("walked %d entries of the tree", len(entries))
	}

	walks := map[string]func(ctx context.Context) error{
		"Select with a ** wildcard": func(ctx context.Context) error {
			_, err := Select(ctx, src, glob)
			return err
		},
		"Glob": func(ctx context.Context) error {
			_, err := Glob(ctx, root, "**/*.txt")
			return err
		},
		"AppendEntries": func(ctx context.Context) error {
			_, err := sel.AppendEntries(ctx, &sel.Matches[0], nil)
			return err
		},
		"AppendEntries of one large directory": func(ctx context.Context) error {
			sel, err := Select(t.Context(), src, &llb.CopyAction{Src: []string{"flat"}})
			if err != nil {
				return err
			}
			_, err = sel.AppendEntries(ctx, &sel.Matches[0], nil)
			return err
		},
		// An excluded directory is walked for a re-included file.
		"Select of an excluded directory": func(ctx context.Context) error {
			_, err := Select(ctx, Source{Root: root, Excludes: []string{"flat", "!flat/keep"}}, &llb.CopyAction{Src: []string{"flat"}})
			return err
		},
		"Walk": func(ctx context.Context) error {
			return sel.Walk(ctx, &sel.Matches[0], func(Entry) error { return nil })
		},
	}
	for name, walk := range walks {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := walk(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s, cancelled before: %v, want context.Canceled", name, err)
		}
		// Cancelled during the walk (after its second look at ctx).
		ctx2 := newCancelAfter(2)
		if err := walk(ctx2); !errors.Is(err, context.Canceled) {
			t.Errorf("%s, cancelled during: %v, want context.Canceled", name, err)
		}
		if n := ctx2.calls.Load(); n != 3 {
			t.Errorf("%s looked at its context %d times, want 3: it went on after the cancellation", name, n)
		}
	}

	// Walk stops between two calls of fn.
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err = sel.Walk(ctx, &sel.Matches[0], func(Entry) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Walk cancelled in fn: %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
