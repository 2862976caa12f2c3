// Package layering holds the test that keeps strata's dependencies pointing
// one way (DESIGN.md §2): cmd -> builder -> {frontend, solver, exporter};
// solver imports only llb and internal/progress; cache/* never imports
// solver or frontend; llb imports no strata package.
package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/strata-build/strata/"

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
}

func TestDependenciesPointOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	rules := []struct {
		from    string // package prefix (relative)
		allowed func(to string) bool
		why     string
	}{
		{"llb", func(to string) bool { return false }, "llb is plain data"},
		{"solver", func(to string) bool {
			return to == "llb" || to == "internal/progress" || strings.HasPrefix(to, "solver")
		}, "the solver is generic"},
		{"cache", func(to string) bool {
			return !strings.HasPrefix(to, "solver") && !strings.HasPrefix(to, "frontend") && !strings.HasPrefix(to, "builder") && !strings.HasPrefix(to, "exporter")
		}, "the store does not know who uses it"},
		{"frontend", func(to string) bool {
			return to == "llb" || strings.HasPrefix(to, "frontend") || strings.HasPrefix(to, "internal/")
		}, "the frontend is pure"},
		{"executor", func(to string) bool {
			return to == "mount" || strings.HasPrefix(to, "executor") || strings.HasPrefix(to, "internal/")
		}, "the sandbox only takes mounts"},
		{"mount", func(to string) bool { return false }, "mounts are plain data and syscalls"},
	}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		from := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := strings.TrimPrefix(imp, module)
			for _, r := range rules {
				if from != r.from && !strings.HasPrefix(from, r.from+"/") {
					continue
				}
				if from == "solver/ops" || strings.HasPrefix(from, "solver/ops/") {
					continue // op implementations are the solver's edge to the store
				}
				if !r.allowed(to) {
					t.Errorf("%s imports %s: %s", from, to, r.why)
				}
			}
		}
	}
}

// Every package says what it is for (STYLE.md: doc comments teach the
// lifecycle).
func TestEveryPackageHasADocComment(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}
