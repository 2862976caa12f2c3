package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// temps lists the temporary files in dir, as a sweep would find them.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, TempPattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{
		{"first", 0o600},
		{"second, longer, replaces", 0o644},
		{"", 0o640},
	} {
		if err := WriteFile(p, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		if got := read(t, p); got != tc.data {
			t.Errorf("content %q, want %q", got, tc.data)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		if m := temps(t, dir); len(m) != 0 {
			t.Errorf("temporary files left: %v", m)
		}
	}
}

func TestStreamCommitAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "index.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Abort keeps the old file and leaves no temporary file.
	f, err := New(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	m := temps(t, dir)
	if len(m) != 1 || !strings.HasPrefix(filepath.Base(m[0]), ".tmp-index.json-") {
		t.Fatalf("temporary files while writing: %v, want one .tmp-index.json-*", m)
	}
	if got := read(t, p); got != "old" {
		t.Errorf("content before commit %q, want old", got)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Abort: %v", err)
	}
	if got := read(t, p); got != "old" {
		t.Errorf("content after abort %q, want old", got)
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Errorf("temporary files after abort: %v", m)
	}

	// Commit replaces it; Close afterwards does nothing.
	f, err = New(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range []string{"n", "e", "w"} {
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got := read(t, p); got != "new" {
		t.Errorf("content after commit %q, want new", got)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestCommitFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(p, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory at the path: the rename fails.
	if err := WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if m := temps(t, dir); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	if err := WriteFile(filepath.Join(dir, "nodir", "f"), nil, 0o644); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestLongName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, strings.Repeat("n", 250))
	if err := WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "x" {
		t.Errorf("content %q", got)
	}
}
