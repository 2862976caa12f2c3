package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/llb"
)

// graph is base -> a -> b, and c; root has inputs b and c.
func graph(h *harness, baseCmd string) *llb.Vertex {
	base := h.vertex("base", spec{
		key:        "base " + baseCmd,
		components: []Component{{Name: "command", Value: baseCmd}},
		files:      map[string]string{"base": baseCmd},
	})
	a := h.vertex("a", spec{key: "a", files: map[string]string{"a": "1"}}, base)
	b := h.vertex("b", spec{key: "b"}, a)
	c := h.vertex("c", spec{key: "c", files: map[string]string{"c": "1"}})
	return h.vertex("root", spec{key: "root"}, b, c)
}

func TestFirstSolveRunsEverything(t *testing.T) {
	h := newHarness(t)
	r := h.mustSolve(graph(h, "make"))
	want := map[string]string{"base": "make", "a": "1", "c": "1"}
	if diff := cmp.Diff(want, r.files); diff != "" {
		t.Errorf("root files (-want +got):\n%s", diff)
	}
	one := map[string]int{"base": 1, "a": 1, "b": 1, "c": 1, "root": 1}
	if diff := cmp.Diff(one, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(one, h.count(h.cacheMaps)); diff != "" {
		t.Errorf("cache map calls (-want +got):\n%s", diff)
	}
	for name, reason := range h.reasons() {
		if reason != ReasonNoPrevious {
			t.Errorf("%s missed because %q, want %q", name, reason, ReasonNoPrevious)
		}
	}
	wantEvents := []string{"a done", "a started", "b done", "b started", "base done", "base started",
		"c done", "c started", "root done", "root started"}
	if diff := cmp.Diff(wantEvents, h.statuses()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSecondSolveIsCached(t *testing.T) {
	h := newHarness(t)
	first := h.mustSolve(graph(h, "make"))
	h.reset()
	second := h.mustSolve(graph(h, "make"))
	if second.id != first.id {
		t.Errorf("second solve returned %s, want the cached %s", second.id, first.id)
	}
	if n := len(h.count(h.execs)); n != 0 {
		t.Errorf("second solve ran %d ops: %v", n, h.count(h.execs))
	}
	// Only the root is looked up (a hit there loads nothing below), and
	// every step is reported CACHED, as docker lists a cached build.
	if diff := cmp.Diff([]string{"a cached", "b cached", "base cached", "c cached", "root cached"}, h.statuses()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestLeafChangeRerunsOnlyDependents(t *testing.T) {
	h := newHarness(t)
	h.mustSolve(graph(h, "make"))
	h.reset()
	r := h.mustSolve(graph(h, "make all"))
	if r.files["base"] != "make all" {
		t.Errorf("root saw base %q, want the new one", r.files["base"])
	}
	want := map[string]int{"base": 1, "a": 1, "b": 1, "root": 1}
	if diff := cmp.Diff(want, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	wantReasons := map[string]string{
		"base": `command changed from make to "make all"`,
		"a":    ReasonParentMissed,
		"b":    ReasonParentMissed,
		"root": ReasonParentMissed,
	}
	if diff := cmp.Diff(wantReasons, h.reasons()); diff != "" {
		t.Errorf("miss reasons (-want +got):\n%s", diff)
	}
	if st := h.statuses(); !contains(st, "c cached") {
		t.Errorf("unchanged input c was not loaded from the cache: %v", st)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyGraph is a context source (never cached) copied into an image.
func copyGraph(h *harness, files map[string]string) *llb.Vertex {
	ctx := h.vertex("context", spec{key: "context", noCache: true, files: files})
	base := h.vertex("image", spec{key: "image", files: map[string]string{"etc/os": "busybox"}})
	return h.vertex("copy", spec{key: "copy", content: []int{1}}, base, ctx)
}

func TestContentDep(t *testing.T) {
	h := newHarness(t)
	files := map[string]string{"app/main.go": "package main", "go.mod": "module x"}
	first := h.mustSolve(copyGraph(h, files))
	if first.files["app/main.go"] != "package main" || first.files["etc/os"] != "busybox" {
		t.Fatalf("copy result files: %v", first.files)
	}

	h.reset()
	second := h.mustSolve(copyGraph(h, map[string]string{"app/main.go": "package main", "go.mod": "module x"}))
	if second.id != first.id {
		t.Errorf("unchanged content: got %s, want cached %s", second.id, first.id)
	}
	if diff := cmp.Diff(map[string]int{"context": 1}, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls with unchanged content (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"copy": 1}, h.count(h.contents)); diff != "" {
		t.Errorf("content checksums (-want +got):\n%s", diff)
	}
	// The context source has no StepRecord and no reason: it is never cached.
	if diff := cmp.Diff(map[string]string{"context": ""}, h.reasons()); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}

	steps := []struct {
		files  map[string]string
		reason string
	}{
		{map[string]string{"app/main.go": "package main // v2", "go.mod": "module x"}, "app/main.go changed"},
		{map[string]string{"app/main.go": "package main // v2", "go.mod": "module x", "README": "hi"}, "README added"},
		{map[string]string{"app/main.go": "package main // v2", "README": "hi"}, "go.mod removed"},
		{map[string]string{"app/main.go": "package main // v3", "README": "hi!"}, "2 files changed: README, app/main.go"},
	}
	for _, s := range steps {
		h.reset()
		r := h.mustSolve(copyGraph(h, s.files))
		if got := h.reasons()["copy"]; got != s.reason {
			t.Errorf("copy of %v missed because %q, want %q", s.files, got, s.reason)
		}
		if r.files["README"] != s.files["README"] {
			t.Errorf("copy result README = %q, want %q", r.files["README"], s.files["README"])
		}
	}
}

func TestContentDepInputLoadedFromCache(t *testing.T) {
	// A content-keyed input that is itself cacheable is loaded, not run.
	h := newHarness(t)
	build := func(cmd string) *llb.Vertex {
		src := h.vertex("builder", spec{key: "builder", files: map[string]string{"bin/app": "elf"}})
		run := h.vertex("run", spec{key: "run " + cmd, components: []Component{{Name: "command", Value: cmd}}}, src)
		return h.vertex("final", spec{key: "final", content: []int{0}}, run)
	}
	first := h.mustSolve(build("touch a"))
	h.reset()
	// run reruns with the same output files: final hits on content.
	second := h.mustSolve(build("touch b"))
	if second.id != first.id {
		t.Errorf("same content: got %s, want cached %s", second.id, first.id)
	}
	if diff := cmp.Diff(map[string]int{"run": 1}, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"builder cached", "final cached", "run done", "run started"}, h.statuses()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestIdenticalVerticesRunOnce(t *testing.T) {
	h := newHarness(t)
	base := h.vertex("base", spec{key: "base"})
	// Two distinct vertex values with the same op and inputs: one llb digest.
	x1 := h.vertex("x", spec{key: "x"}, base)
	x2 := h.vertex("x", spec{key: "x"}, base)
	left := h.vertex("left", spec{key: "left"}, x1)
	right := h.vertex("right", spec{key: "right"}, x2)
	root := h.vertex("root", spec{key: "root"}, left, right, x1)
	h.mustSolve(root)
	want := map[string]int{"base": 1, "x": 1, "left": 1, "right": 1, "root": 1}
	if diff := cmp.Diff(want, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, h.count(h.cacheMaps)); diff != "" {
		t.Errorf("cache map calls (-want +got):\n%s", diff)
	}
}

func TestScratchInputIsNil(t *testing.T) {
	h := newHarness(t)
	var got []Result
	root := h.vertex("root", spec{key: "root", content: []int{0}, exec: func(_ context.Context, in []Result) (Result, error) {
		got = in
		return &fakeResult{id: "r"}, nil
	}}, nil, h.vertex("leaf", spec{key: "leaf"}))
	h.mustSolve(root)
	if len(got) != 2 || got[0] != nil || got[1] == nil || got[1].ID() != "leaf#1" {
		t.Errorf("exec inputs = %v, want [nil leaf#1]", got)
	}
}

func TestIndependentOpsRunInParallel(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // turns a deadlock into a failure
	defer cancel()
	inA, inB := make(chan struct{}), make(chan struct{})
	// Each op returns only once the other one is inside Exec too.
	meet := func(mine, other chan struct{}) func(context.Context, []Result) (Result, error) {
		return func(ctx context.Context, _ []Result) (Result, error) {
			close(mine)
			select {
			case <-other:
				return &fakeResult{id: "ok"}, nil
			case <-ctx.Done():
				return nil, errors.New("the other op never started")
			}
		}
	}
	a := h.vertex("a", spec{key: "a", exec: meet(inA, inB)})
	b := h.vertex("b", spec{key: "b", exec: meet(inB, inA)})
	root := h.vertex("root", spec{key: "root"}, a, b)
	if _, err := h.solver(Options{Jobs: 2}).Solve(ctx, root); err != nil {
		t.Fatal(err)
	}
}

func TestJobsBoundsExec(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		t.Run(fmt.Sprint("jobs=", jobs), func(t *testing.T) {
			h := newHarness(t)
			var leaves []*llb.Vertex
			for i := range 64 {
				leaves = append(leaves, h.vertex(fmt.Sprint("leaf", i), spec{key: fmt.Sprint("leaf", i)}))
			}
			mid := h.vertex("mid", spec{key: "mid"}, leaves[:32]...)
			root := h.vertex("root", spec{key: "root"}, append([]*llb.Vertex{mid}, leaves[16:]...)...)
			if _, err := h.solver(Options{Jobs: jobs}).Solve(t.Context(), root); err != nil {
				t.Fatal(err)
			}
			if n := len(h.count(h.execs)); n != 66 {
				t.Errorf("%d ops ran, want 66", n)
			}
			if m := h.maxRunning.Load(); m > int32(jobs) {
				t.Errorf("%d ops ran at once, limit %d", m, jobs)
			}
		})
	}
}

func TestErrorCancelsSiblings(t *testing.T) {
	h := newHarness(t)
	boom := errors.New("exit status 2")
	slowIn := make(chan struct{})
	var slowSaw atomic.Value
	slow := h.vertex("slow", spec{key: "slow", exec: func(ctx context.Context, _ []Result) (Result, error) {
		close(slowIn)
		<-ctx.Done()
		slowSaw.Store(context.Cause(ctx))
		return nil, ctx.Err()
	}})
	bad := h.vertex("bad", spec{key: "bad", exec: func(ctx context.Context, _ []Result) (Result, error) {
		<-slowIn
		return nil, boom
	}})
	mid := h.vertex("mid", spec{key: "mid"}, bad)
	after := h.vertex("after", spec{key: "after"}, slow)
	root := h.vertex("root", spec{key: "root"}, mid, after)
	_, err := h.solver(Options{Jobs: 2}).Solve(t.Context(), root)
	if !errors.Is(err, boom) {
		t.Fatalf("solve error = %v, want %v", err, boom)
	}
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Vertex != bad {
		t.Fatalf("solve error %v is not a VertexError of the failing vertex", err)
	}
	if nested := countVertexErrors(err); nested != 1 {
		t.Errorf("error wraps %d VertexErrors, want 1", nested)
	}
	if got, want := err.Error(), "bad: exit status 2"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	// Solve returned after the cancelled sibling did.
	cause, _ := slowSaw.Load().(error)
	if !errors.Is(cause, boom) {
		t.Errorf("sibling was cancelled by %v, want the failure", cause)
	}
	execs := h.count(h.execs)
	if execs["mid"] != 0 || execs["after"] != 0 || execs["root"] != 0 {
		t.Errorf("dependents of failed vertices ran: %v", execs)
	}
	st := h.statuses()
	for _, want := range []string{"bad error", "bad started", "slow error", "slow started"} {
		if !contains(st, want) {
			t.Errorf("events %v lack %q", st, want)
		}
	}
	if _, ok := h.store.steps["bad"]; ok {
		t.Error("a failed step was recorded")
	}
}

func countVertexErrors(err error) int {
	n := 0
	for err != nil {
		if _, ok := err.(*VertexError); ok {
			n++
		}
		err = errors.Unwrap(err)
	}
	return n
}

func TestParentCancelled(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(t.Context())
	root := h.vertex("root", spec{key: "root", exec: func(ctx context.Context, _ []Result) (Result, error) {
		cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	_, err := h.solver(Options{}).Solve(ctx, root)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("solve error = %v, want context.Canceled", err)
	}
}

func TestNoCacheOption(t *testing.T) {
	h := newHarness(t)
	h.mustSolve(graph(h, "make"))
	h.reset()
	r, err := h.solver(Options{NoCache: true}).Solve(t.Context(), graph(h, "make"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ID(); got != "root#2" {
		t.Errorf("no-cache solve returned %s, want a new root#2", got)
	}
	for _, name := range []string{"base", "a", "b", "c", "root"} {
		if got := h.reasons()[name]; got != ReasonNoCache {
			t.Errorf("%s missed because %q, want %q", name, got, ReasonNoCache)
		}
	}
	// The new results were saved: a normal solve now returns them.
	h.reset()
	if got := h.mustSolve(graph(h, "make")).id; got != "root#2" {
		t.Errorf("after no-cache solve the cache holds %s, want root#2", got)
	}
}

func TestIgnoreCacheMeta(t *testing.T) {
	h := newHarness(t)
	h.mustSolve(graph(h, "make"))
	h.reset()
	root := graph(h, "make")
	root.Meta.IgnoreCache = true
	root.Inputs[1].Meta.IgnoreCache = true // c
	h.mustSolve(root)
	// b is loaded for root; c is re-run; nothing below b is touched.
	if diff := cmp.Diff(map[string]int{"c": 1, "root": 1}, h.count(h.execs)); diff != "" {
		t.Errorf("exec calls (-want +got):\n%s", diff)
	}
	want := map[string]string{"c": ReasonNoCache, "root": ReasonNoCache}
	if diff := cmp.Diff(want, h.reasons()); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestEvictedResult(t *testing.T) {
	h := newHarness(t)
	h.mustSolve(graph(h, "make"))
	h.store.evict()
	h.reset()
	h.mustSolve(graph(h, "make"))
	for _, name := range []string{"base", "a", "b", "c", "root"} {
		if got := h.reasons()[name]; got != ReasonEvicted {
			t.Errorf("%s missed because %q, want %q", name, got, ReasonEvicted)
		}
	}
}

func TestComponentReasons(t *testing.T) {
	long := strings.Repeat("x", 60)
	cases := []struct {
		old, cur []Component
		want     string
	}{
		{[]Component{{"arg VERSION", "1"}}, []Component{{"arg VERSION", "2"}}, "build arg VERSION changed from 1 to 2"},
		{[]Component{{"command", "make " + long}}, []Component{{"command", "make"}}, "command changed"},
		{[]Component{{"command", "make"}, {"user", "root"}}, []Component{{"command", "make"}, {"user", "app"}}, "user changed from root to app"},
		{[]Component{{"command", "make"}}, []Component{{"command", "make"}, {"env FOO", "bar"}}, "env FOO added"},
		{[]Component{{"command", "make"}, {"env FOO", "bar"}}, []Component{{"command", "make"}}, "env FOO removed"},
		{[]Component{{"env FOO", ""}}, []Component{{"env FOO", "a\tb"}}, `env FOO changed from "" to "a\tb"`},
	}
	for _, c := range cases {
		h := newHarness(t)
		h.store.steps["step"] = &StepRecord{Key: "sha256:old", Components: c.old}
		h.mustSolve(h.vertex("step", spec{key: "step", components: c.cur}))
		if got := h.reasons()["step"]; got != c.want {
			t.Errorf("%v -> %v: reason %q, want %q", c.old, c.cur, got, c.want)
		}
		if rec := h.store.steps["step"]; rec == nil || !cmp.Equal(rec.Components, c.cur) {
			t.Errorf("step record after the build = %+v, want components %v", rec, c.cur)
		}
	}
}

func TestNilCacheRunsEverything(t *testing.T) {
	h := newHarness(t)
	s := New(Options{Resolve: h.resolve})
	for range 2 {
		if _, err := s.Solve(t.Context(), graph(h, "make")); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.count(h.execs)["root"]; got != 2 {
		t.Errorf("root ran %d times without a cache, want 2", got)
	}
}

func TestResolveError(t *testing.T) {
	h := newHarness(t)
	root := &llb.Vertex{Op: &llb.SourceOp{Source: llb.SourceImage, Ref: "busybox"}, Meta: llb.Meta{Name: "unknown"}}
	_, err := h.solve(root)
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Vertex != root || !strings.Contains(err.Error(), `no spec for "unknown"`) {
		t.Errorf("solve error = %v, want a VertexError of the unresolvable vertex", err)
	}
}

func TestCacheMapError(t *testing.T) {
	h := newHarness(t)
	leaf := h.vertex("leaf", spec{key: "leaf"})
	root := h.vertex("root", spec{key: "root"}, leaf)
	s := New(Options{Resolve: func(v *llb.Vertex) (Op, error) {
		if v == leaf {
			return brokenOp{}, nil
		}
		return h.resolve(v)
	}, Progress: h})
	_, err := s.Solve(t.Context(), root)
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Vertex != leaf || countVertexErrors(err) != 1 {
		t.Fatalf("solve error = %v, want one VertexError of leaf", err)
	}
	if want := "leaf: compute cache map: no image config"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if diff := cmp.Diff([]string{"leaf error"}, h.statuses()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

type brokenOp struct{}

func (brokenOp) CacheMap(context.Context) (*CacheMap, error) {
	return nil, errors.New("no image config")
}
func (brokenOp) Exec(context.Context, []Result) (Result, error) {
	return nil, errors.New("exec of an op whose cache map failed")
}

func TestCacheKeyFormat(t *testing.T) {
	// Pinned: a change of the key format must bump KeyVersion.
	op := digest.FromString("op")
	got := cacheKey(op, []string{"", "content:sha256:ab"})
	want := digest.FromString(`{"Version":"strata.cache.v1","Op":"` + string(op) + `","Inputs":["","content:sha256:ab"]}`)
	if got != want {
		t.Errorf("cache key = %s, want %s", got, want)
	}
	if cacheKey(op, []string{"sha256:ab"}) == cacheKey(op, []string{"content:sha256:ab"}) {
		t.Error("content and definition inputs share a key")
	}
}

func TestExecWithoutResult(t *testing.T) {
	h := newHarness(t)
	root := h.vertex("root", spec{key: "root", exec: func(context.Context, []Result) (Result, error) { return nil, nil }})
	_, err := h.solve(root)
	if err == nil || err.Error() != "root: exec op returned no result" {
		t.Errorf("solve error = %v, want the missing result named", err)
	}
	if len(h.store.results) != 0 {
		t.Errorf("a missing result was saved: %v", h.store.results)
	}
}

func TestContentError(t *testing.T) {
	h := newHarness(t)
	src := h.vertex("src", spec{key: "src"})
	root := h.vertex("root", spec{key: "root"}, src)
	s := New(Options{Cache: h.store, Progress: h, Resolve: func(v *llb.Vertex) (Op, error) {
		if v == root {
			return contentErrOp{}, nil
		}
		return h.resolve(v)
	}})
	_, err := s.Solve(t.Context(), root)
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Vertex != root || countVertexErrors(err) != 1 {
		t.Fatalf("solve error = %v, want one VertexError of root", err)
	}
	if want := "root: checksum input 0: open app: permission denied"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

type contentErrOp struct{}

func (contentErrOp) CacheMap(context.Context) (*CacheMap, error) {
	return &CacheMap{Digest: "sha256:00", Deps: []Dep{{Content: func(context.Context, Result) (ContentSum, error) {
		return ContentSum{}, errors.New("open app: permission denied")
	}}}}, nil
}
func (contentErrOp) Exec(context.Context, []Result) (Result, error) {
	return nil, errors.New("exec after a failed checksum")
}

// linkStore is a memStore that keeps links (Linker).
type linkStore struct {
	*memStore
	links map[digest.Digest]digest.Digest
}

func (s *linkStore) LookupLink(_ context.Context, l digest.Digest) (digest.Digest, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.links[l]
	return k, ok, nil
}

func (s *linkStore) SaveLink(_ context.Context, l, k digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links[l] = k
	return nil
}

// With links, a cached step that copies from a cached stage is a hit
// without loading the stage or reading its files; a changed stage misses
// the link and keys by content again; a link whose result is gone falls
// back to the full key and runs.
func TestLinkSkipsContentOfCachedInput(t *testing.T) {
	h := newHarness(t)
	ls := &linkStore{memStore: h.store, links: map[digest.Digest]digest.Digest{}}
	solve := func(root *llb.Vertex) *fakeResult {
		t.Helper()
		r, err := h.solver(Options{Cache: ls}).Solve(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		return r.(*fakeResult)
	}
	build := func(cmd string) *llb.Vertex {
		src := h.vertex("builder", spec{key: "builder", files: map[string]string{"bin/app": "elf"}})
		run := h.vertex("run", spec{key: "run " + cmd, files: map[string]string{"out": cmd}}, src)
		return h.vertex("final", spec{key: "final", content: []int{0}}, run)
	}
	first := solve(build("make"))
	if len(ls.links) != 1 {
		t.Fatalf("links after the first solve: %v", ls.links)
	}
	h.reset()
	second := solve(build("make"))
	if second.id != first.id {
		t.Errorf("got %s, want cached %s", second.id, first.id)
	}
	if n := h.count(h.contents)["final"]; n != 0 {
		t.Errorf("the linked key read the stage's content %d times", n)
	}
	if diff := cmp.Diff([]string{"builder cached", "final cached", "run cached"}, h.statuses()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	h.reset()
	third := solve(build("make all"))
	if third.files["out"] != "make all" || h.count(h.contents)["final"] != 1 {
		t.Errorf("a changed stage: result %v, content reads %v", third.files, h.count(h.contents))
	}

	// The result behind the link is gone: the key is computed in full (the
	// same key) and the step runs.
	h.store.mu.Lock()
	for k, r := range h.store.results {
		if r.(*fakeResult).id == first.id {
			delete(h.store.results, k)
		}
	}
	h.store.mu.Unlock()
	h.reset()
	fourth := solve(build("make"))
	if fourth.files["out"] != "make" || h.count(h.execs)["final"] != 1 || h.count(h.contents)["final"] != 1 {
		t.Errorf("an evicted link target: result %v, execs %v, content reads %v", fourth.files, h.count(h.execs), h.count(h.contents))
	}
}

// Four stages copied one after another into a final chain run at once,
// both when no link is known and when every link is known but the
// results behind them are gone: links never serialize a build.
func TestLinksKeepStagesParallel(t *testing.T) {
	h := newHarness(t)
	ls := &linkStore{memStore: h.store, links: map[digest.Digest]digest.Digest{}}
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	barrier := func(ctx context.Context, _ []Result) (Result, error) {
		mu.Lock()
		arrived++
		wait := all
		if arrived%4 == 0 {
			close(all)
			all = make(chan struct{})
		}
		mu.Unlock()
		select {
		case <-wait:
		case <-time.After(5 * time.Second):
			mu.Lock()
			n := arrived
			mu.Unlock()
			return nil, fmt.Errorf("the stages did not all run at once: %d arrived", n)
		}
		return &fakeResult{id: "stage", files: map[string]string{"out": "x"}}, nil
	}
	graph := func() *llb.Vertex {
		cur := h.vertex("base", spec{key: "base"})
		for i := range 4 {
			stage := h.vertex(fmt.Sprint("stage", i), spec{key: fmt.Sprint("stage", i), exec: barrier})
			cur = h.vertex(fmt.Sprint("copy", i), spec{key: fmt.Sprint("copy", i), content: []int{1}}, cur, stage)
		}
		return cur
	}
	for _, round := range []string{"no links", "links, results gone"} {
		if _, err := h.solver(Options{Cache: ls}).Solve(t.Context(), graph()); err != nil {
			t.Fatalf("%s: %v", round, err)
		}
		if len(ls.links) != 4 {
			t.Fatalf("%s: %d links", round, len(ls.links))
		}
		h.store.mu.Lock()
		clear(h.store.results)
		h.store.mu.Unlock()
		h.reset()
	}
}
