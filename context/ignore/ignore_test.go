package ignore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadFilePrecedence(t *testing.T) {
	ctxDir, dfDir := t.TempDir(), t.TempDir()
	df := filepath.Join(dfDir, "app.Dockerfile")
	if got, err := ReadFile(ctxDir, df); err != nil || got != nil {
		t.Fatalf("no ignore file: %v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, ".dockerignore"), []byte("# comment\n/build\n\n!build/keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(ctxDir, df)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"build", "!build/keep"}, got); diff != "" {
		t.Errorf("context .dockerignore (-want +got):\n%s", diff)
	}
	if err := os.WriteFile(df+".dockerignore", []byte("*.md\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadFile(ctxDir, df)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"*.md"}, got); diff != "" {
		t.Errorf("Dockerfile-specific ignore file should win (-want +got):\n%s", diff)
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		patterns []string
		path     string
		want     bool
	}{
		{nil, "a", false},
		{[]string{"*.log"}, "x.log", true},
		{[]string{"*.log"}, "sub/x.log", false},
		{[]string{"**/*.log"}, "sub/deep/x.log", true},
		{[]string{"**/*.log"}, "x.log", true},
		{[]string{"build"}, "build/out/bin", true},
		{[]string{"build", "!build/keep"}, "build/keep", false},
		{[]string{"build", "!build/keep"}, "build/other", true},
		{[]string{"*", "!src"}, "src/main.go", false},
		{[]string{"*", "!src"}, "README", true},
		{[]string{"!a", "a"}, "a", true},
		{[]string{"docs/**"}, "docs/a/b", true},
		{[]string{"docs/**"}, "docsx", false},
		{[]string{"x"}, "/x", true},
		{[]string{"x"}, "./x/y", true},
		{[]string{"*"}, ".", false},
	}
	for _, tt := range tests {
		m, err := NewMatcher(tt.patterns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Excluded(tt.path, false)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("patterns %q: Excluded(%q) = %v, want %v", tt.patterns, tt.path, got, tt.want)
		}
	}
	if _, err := NewMatcher([]string{"[a-"}); err == nil {
		t.Error("bad pattern: want error")
	}
}
