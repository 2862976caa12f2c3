// Package layering holds the test that keeps strata's dependencies pointing
// one way (DESIGN.md §2): cmd -> {builder, store} -> {frontend, solver,
// exporter}; cmd only parses; solver imports only llb and
// internal/progress; cache/* never imports solver or frontend; llb and
// mount import no strata package.
package layering

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/strata-build/strata/"

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
}

// A rule says which packages of the module the package From and the
// packages below it may import.
type rule struct {
	from    string   // relative to the module: "cache" covers cache and cache/layer
	skip    []string // packages below from that the rule does not cover
	allowed func(to string) bool
	why     string
}

// An exception lets one package import one package a rule forbids, for as
// long as the code still does: an exception nothing uses is an error, so
// the list only shrinks.
type exception struct {
	from, to string
	why      string
}

// rules are the layers of DESIGN.md §2.
var rules = []rule{
	{from: "llb", allowed: only(), why: "llb is plain data"},
	{from: "mount", allowed: only(), why: "mounts are plain data and the system calls that perform them"},
	{from: "solver", skip: []string{"solver/ops"}, allowed: only("llb", "internal/progress", "solver/..."),
		why: "the solver is generic (solver/ops, its edge to the store, excepted)"},
	{from: "cache", allowed: except("solver/...", "frontend/...", "builder/...", "exporter/...", "store/...", "cmd/..."),
		why: "the store does not know who uses it"},
	{from: "frontend", allowed: only("llb", "frontend/...", "internal/..."), why: "the frontend is pure"},
	{from: "executor", allowed: only("executor/...", "internal/...", "mount"), why: "the sandbox only takes mounts"},
	// context/local's Selection is what one llb.CopyAction reads.
	{from: "context", allowed: only("context/...", "internal/...", "llb"), why: "the build context is read by the store and the ops, and knows neither"},
	{from: "registry", allowed: only("cache/content", "cache/images", "internal/...", "registry/..."),
		why: "the registry client moves blobs between the content store and registries"},
	// The registry target pushes through registry; WriteImage turns the
	// cache's layers into an image.
	{from: "exporter", allowed: only("cache", "cache/content", "cache/images", "cache/layer", "mount", "registry/...", "internal/..."),
		why: "exporters write what the content store holds"},
	{from: "remotecache", allowed: only("cache", "cache/content", "cache/images", "registry/...", "internal/..."),
		why: "the remote cache moves records and blobs, and knows no build"},
	{from: "store", allowed: only("cache/...", "exporter", "registry/...", "executor/...", "internal/...", "mount"),
		why: "the store owns the root and knows no build"},
	{from: "cmd", allowed: only("builder/...", "store/...", "exporter/...", "registry/...", "internal/...", "cache/images", "llb"),
		why: "cmd only parses strings into the options of builder and store"},
}

// exceptions are the imports the rules forbid that the code still has.
var exceptions = []exception{
	// The CLI rewrite moves these behind builder and store.
	{"cmd/strata", "context/local", "build - reads a context tarball (IsTar, ExtractTar)"},
	{"cmd/strata", "executor", "executor.MaybeInit (the sandbox's re-exec entry, first in main), executor.HostIP for --add-host"},
}

// only allows the listed packages; "x/..." is x and every package below it.
func only(patterns ...string) func(string) bool {
	return func(to string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { return matches(p, to) })
	}
}

// except allows every package but the listed ones.
func except(patterns ...string) func(string) bool {
	o := only(patterns...)
	return func(to string) bool { return !o(to) }
}

func matches(pattern, p string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return within(p, dir)
	}
	return p == pattern
}

// within reports whether p is dir or a package below it.
func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// check returns one line per import of pkgs (full import paths) that rules
// forbid and exceptions do not allow, per exception nothing needs and per
// rule that covers no package.
func check(pkgs []pkg, rules []rule, exceptions []exception) []string {
	var errs []string
	used := make([]bool, len(exceptions))
	covers := make([]bool, len(rules))
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.ImportPath, module)
		if !ok {
			continue
		}
		for i, r := range rules {
			if !within(from, r.from) || slices.ContainsFunc(r.skip, func(s string) bool { return within(from, s) }) {
				continue
			}
			covers[i] = true
			for _, imp := range p.Imports {
				to, ok := strings.CutPrefix(imp, module)
				if !ok || r.allowed(to) {
					continue
				}
				j := slices.IndexFunc(exceptions, func(e exception) bool { return e.from == from && e.to == to })
				if j >= 0 {
					used[j] = true
					continue
				}
				errs = append(errs, fmt.Sprintf("%s imports %s: %s", from, to, r.why))
			}
		}
	}
	for j, e := range exceptions {
		if !used[j] {
			errs = append(errs, fmt.Sprintf("exception %s -> %s is not needed any more: remove it", e.from, e.to))
		}
	}
	for i, r := range rules {
		if !covers[i] {
			errs = append(errs, fmt.Sprintf("rule %q covers no package", r.from))
		}
	}
	return errs
}

func modulePackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestDependenciesPointOneWay(t *testing.T) {
	for _, e := range check(modulePackages(t), rules, exceptions) {
		t.Error(e)
	}
}

// The rules catch a wrong-way import, and only that.
func TestRulesCatchWrongWayImports(t *testing.T) {
	p := func(from string, imports ...string) pkg {
		for i, imp := range imports {
			if !strings.Contains(imp, ".") {
				imports[i] = module + imp
			}
		}
		return pkg{ImportPath: module + from, Imports: imports}
	}
	for _, tc := range []struct {
		name string
		pkg  pkg
		exc  []exception
		want []string // a substring of each error, in order
	}{
		{"cache imports solver", p("cache/x", "solver"), nil, []string{"cache/x imports solver: the store does not know who uses it"}},
		{"cache imports builder", p("cache", "builder"), nil, []string{"cache imports builder"}},
		{"cache within cache", p("cache/x", "cache/content", "internal/progress", "context/local"), nil, nil},
		{"other modules are not ours", p("cache/x", "github.com/other/solver", "context"), nil, nil},
		{"solver imports the store", p("solver", "cache"), nil, []string{"solver imports cache"}},
		{"solver/ops is the solver's edge", p("solver/ops", "cache", "executor"), nil, nil},
		{"llb imports nothing", p("llb", "internal/progress"), nil, []string{"llb imports internal/progress"}},
		{"mount imports nothing", p("mount", "cache/snapshot"), nil, []string{"mount imports cache/snapshot"}},
		{"executor imports the snapshotter", p("executor", "cache/snapshot"), nil, []string{"executor imports cache/snapshot"}},
		{"executor takes mounts", p("executor/runc", "executor", "mount", "internal/progress"), nil, nil},
		{"frontend imports the solver", p("frontend/dockerfile", "solver"), nil, []string{"frontend/dockerfile imports solver"}},
		{"context imports the store", p("context/local", "cache/content"), nil, []string{"context/local imports cache/content"}},
		{"registry imports exporter", p("registry", "exporter"), nil, []string{"registry imports exporter"}},
		{"registry below registry", p("registry/hosts", "registry", "cache/images"), nil, nil},
		{"exporter imports builder", p("exporter", "builder"), nil, []string{"exporter imports builder"}},
		{"exporter imports the solver", p("exporter", "solver"), nil, []string{"exporter imports solver"}},
		{"cmd imports the frontend", p("cmd/strata", "frontend/dockerfile"), nil, []string{"cmd/strata imports frontend/dockerfile: cmd only parses"}},
		{"cmd imports the snapshotter", p("cmd/strata", "cache/snapshot"), nil, []string{"cmd/strata imports cache/snapshot"}},
		{"cmd parses", p("cmd/strata", "builder", "store", "exporter", "registry", "cache/images", "llb", "internal/progress"), nil, nil},
		{"an exception allows one import", p("cmd/strata", "executor"), []exception{{"cmd/strata", "executor", ""}}, nil},
		{"an exception is for one package", p("cmd/other", "executor"), []exception{{"cmd/strata", "executor", ""}},
			[]string{"cmd/other imports executor", "exception cmd/strata -> executor is not needed"}},
		{"an unused exception", p("cmd/strata", "builder"), []exception{{"cmd/strata", "executor", ""}}, []string{"exception cmd/strata -> executor is not needed any more"}},
	} {
		var got []string
		for _, e := range check([]pkg{tc.pkg}, rules, tc.exc) {
			if !strings.HasPrefix(e, "rule ") { // one package leaves most rules idle
				got = append(got, e)
			}
		}
		if !slices.EqualFunc(got, tc.want, strings.Contains) {
			t.Errorf("%s: errors %q, want %q", tc.name, got, tc.want)
		}
	}

	// A rule that covers nothing is a typo.
	errs := check([]pkg{p("cache", "llb")}, []rule{{from: "cahce", allowed: only(), why: "typo"}}, nil)
	if len(errs) != 1 || errs[0] != `rule "cahce" covers no package` {
		t.Errorf("typo rule: %q", errs)
	}
}

// Every package says what it is for (STYLE.md: doc comments teach the
// lifecycle).
func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range modulePackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}
