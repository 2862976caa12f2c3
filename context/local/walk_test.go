package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/llb"
)

// walkAll returns "rel mode link" for every entry of every Match.
func walkAll(t *testing.T, src Source, a *llb.CopyAction) ([]string, []Entry) {
	t.Helper()
	sel, err := Select(t.Context(), src, a)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var entries []Entry
	for i := range sel.Matches {
		err := sel.Walk(context.Background(), &sel.Matches[i], func(e Entry) error {
			got = append(got, fmt.Sprintf("%s %v %s", e.Dest(), e.Info.Mode(), e.Link))
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got, entries
}

// A walk reports entries in lexical order, parents first, with the stat
// os.Lstat gives and symlink targets, and keeps an excluded directory only
// for what an exception re-includes.
func TestWalkEntries(t *testing.T) {
	root := t.TempDir()
	mk(t, root, map[string]string{"a/b.txt": "b", "a/l": "-> ../z", "a.txt": "x", "skip/x": "", "skip/keep": "k"})
	var many []string
	for i := range 40 { // enough names to stat in parallel
		many = append(many, fmt.Sprintf("big/f%02d", i))
	}
	for _, n := range many {
		mk(t, root, map[string]string{n: n})
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "a.txt"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "empty"), os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	all := &llb.CopyAction{Src: []string{"."}, CopyDirContents: true}
	got, entries := walkAll(t, Source{Root: root, Excludes: []string{"skip", "!skip/keep"}, Context: true}, all)
	want := []string{". drwxr-xr-x ", "a drwxr-xr-x ", "a/b.txt -rw-r--r-- ", "a/l Lrwxrwxrwx ../z",
		"a.txt urwxr-xr-x ", "big drwxr-xr-x "}
	for _, n := range many {
		want = append(want, n+" -rw-r--r-- ")
	}
	want = append(want, "empty dtrwxrwxrwx ", "skip drwxr-xr-x ", "skip/keep -rw-r--r-- ")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	for _, e := range entries {
		fi, err := os.Lstat(e.Host)
		if err != nil {
			t.Fatal(err)
		}
		// Reading a directory or link may move its atime: compare the rest.
		st, want := *e.Info.Sys().(*syscall.Stat_t), *fi.Sys().(*syscall.Stat_t)
		st.Atim, want.Atim = syscall.Timespec{}, syscall.Timespec{}
		if st != want || e.Info.Mode() != fi.Mode() || e.Info.Size() != fi.Size() ||
			!e.Info.ModTime().Equal(fi.ModTime()) || e.Info.IsDir() != fi.IsDir() || e.Info.Name() != fi.Name() {
			t.Errorf("%s: stat differs from os.Lstat", e.Rel)
		}
	}

	// Without the exception the excluded directory is left out whole.
	got, _ = walkAll(t, Source{Root: root, Excludes: []string{"skip", "big"}, Context: true}, all)
	if strings.Contains(strings.Join(got, "\n"), "skip") || strings.Contains(strings.Join(got, "\n"), "big") {
		t.Errorf("excluded entries walked: %v", got)
	}
}
