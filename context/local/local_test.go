package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/strata-build/strata/llb"
)

func mk(t *testing.T, root string, spec map[string]string) {
	t.Helper()
	for name, v := range spec {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(v, "-> "); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// No path or symlink resolves outside the root.
func TestResolveStaysInside(t *testing.T) {
	root := t.TempDir()
	mk(t, root, map[string]string{
		"abs": "-> /etc", "up": "-> ../../../..", "loop": "-> loop", "d/rel": "-> ../f", "f": "F",
	})
	tests := map[string]string{
		"/":              ".",
		"../../etc":      "etc",
		"abs/passwd":     "etc/passwd",
		"up/x":           "x",
		"d/rel":          "f",
		"d/../../../../": ".",
		"./a/./b":        "a/b",
	}
	for in, want := range tests {
		got, err := Resolve(root, in)
		if err != nil {
			t.Errorf("Resolve(%q): %v", in, err)
			continue
		}
		if rel := RelTo(root, got); rel != want {
			t.Errorf("Resolve(%q) = %s, want %s", in, rel, want)
		}
	}
	if _, err := Resolve(root, "loop/x"); err == nil {
		t.Error("symlink loop: want error")
	}
	if got, _ := ResolveParent(root, "abs"); got != filepath.Join(root, "abs") {
		t.Errorf("ResolveParent kept the last symlink: %s", got)
	}
}

func TestGlob(t *testing.T) {
	root := t.TempDir()
	mk(t, root, map[string]string{"a.go": "", "b.txt": "", "x/c.go": "", "x/y/d.go": "", "lnk": "-> x", "dir.go/e": ""})
	tests := map[string][]string{
		"*.go":      {"a.go", "dir.go"},
		"**/*.go":   {"a.go", "dir.go", "x/c.go", "x/y/d.go"},
		"x/*/*.go":  {"x/y/d.go"},
		"lnk/*.go":  {"x/c.go"},
		"[ab].*":    {"a.go", "b.txt"},
		"nothing*":  nil,
		"/x/?/d.go": {"x/y/d.go"},
	}
	for pattern, want := range tests {
		got, err := Glob(t.Context(), root, pattern)
		if err != nil {
			t.Fatalf("Glob(%q): %v", pattern, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Glob(%q) (-want +got):\n%s", pattern, diff)
		}
	}
}

func TestSelectNames(t *testing.T) {
	root := t.TempDir()
	mk(t, root, map[string]string{"a/b/c.txt": "", "a/b/d.txt": "", "top": ""})
	a := &llb.CopyAction{Src: []string{"a/./b/*.txt", "top"}, AllowWildcard: true, Parents: true}
	sel, err := Select(t.Context(), Source{Root: root}, a)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range sel.Matches {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"b/c.txt", "b/d.txt", "top"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	_, err = Select(t.Context(), Source{Root: root}, &llb.CopyAction{Src: []string{"a/zz"}})
	var nf *NotFoundError
	if !errors.As(err, &nf) || err.Error() != `copy source "a/zz": not found: looked for /a/zz` {
		t.Errorf("error = %v", err)
	}
}
