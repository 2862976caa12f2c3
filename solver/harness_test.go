package solver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

// fakeResult is a tree of files: path -> content.
type fakeResult struct {
	id    string
	files map[string]string
}

func (r *fakeResult) ID() string { return r.id }

// spec is what a fake op does; vertices are named after their spec in the harness.
type spec struct {
	key        string // the op's own key; also its llb identity
	components []Component
	noCache    bool
	files      map[string]string // files the op adds over its inputs' files
	content    []int             // inputs keyed by content
	exec       func(ctx context.Context, inputs []Result) (Result, error)
}

// harness resolves vertices into fake ops that count their calls, and keeps
// an in-memory cache store and the events of the solves.
type harness struct {
	t     *testing.T
	store *memStore

	mu        sync.Mutex
	specs     map[string]spec // by vertex name
	cacheMaps map[string]int
	execs     map[string]int
	runs      map[string]int // exec calls over the harness's life, for result IDs
	contents  map[string]int
	events    []progress.Event

	running, maxRunning atomic.Int32
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, store: newMemStore(), specs: map[string]spec{}, runs: map[string]int{}}
	h.reset()
	return h
}

// reset forgets the counts and events of earlier solves, not the cache.
func (h *harness) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cacheMaps, h.execs, h.contents = map[string]int{}, map[string]int{}, map[string]int{}
	h.events = nil
	h.maxRunning.Store(0)
}

// vertex makes a vertex named name (also its step ID) doing sp.
func (h *harness) vertex(name string, sp spec, inputs ...*llb.Vertex) *llb.Vertex {
	h.mu.Lock()
	h.specs[name] = sp
	h.mu.Unlock()
	return &llb.Vertex{
		Op:     &llb.ExecOp{Args: []string{sp.key}, Mounts: []llb.Mount{{Type: llb.MountBind, Dest: "/", Input: 0}}},
		Inputs: inputs,
		Meta:   llb.Meta{Name: name, StepID: name},
	}
}

func (h *harness) resolve(v *llb.Vertex) (Op, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sp, ok := h.specs[v.Meta.Name]
	if !ok {
		return nil, fmt.Errorf("no spec for %q", v.Meta.Name)
	}
	return &fakeOp{h: h, name: v.Meta.Name, sp: sp}, nil
}

func (h *harness) Emit(e progress.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

func (h *harness) solver(opts Options) *Solver {
	opts.Resolve = h.resolve
	if opts.Cache == nil {
		opts.Cache = h.store
	}
	if opts.Progress == nil {
		opts.Progress = h
	}
	if opts.Jobs == 0 {
		opts.Jobs = 4
	}
	return New(opts)
}

func (h *harness) solve(root *llb.Vertex) (Result, error) {
	return h.solver(Options{}).Solve(h.t.Context(), root)
}

func (h *harness) mustSolve(root *llb.Vertex) *fakeResult {
	h.t.Helper()
	r, err := h.solve(root)
	if err != nil {
		h.t.Fatalf("solve: %v", err)
	}
	return r.(*fakeResult)
}

func (h *harness) count(m map[string]int) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(m)
}

// statuses lists "name status" per event, sorted, so concurrent order does not matter.
func (h *harness) statuses() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Name+" "+string(e.Status))
	}
	sort.Strings(out)
	return out
}

// reasons maps each started vertex to the reason it missed.
func (h *harness) reasons() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for _, e := range h.events {
		if e.Status == progress.Started {
			out[e.Name] = e.Reason
		}
	}
	return out
}

type fakeOp struct {
	h    *harness
	name string
	sp   spec
}

func (o *fakeOp) CacheMap(ctx context.Context) (*CacheMap, error) {
	o.h.mu.Lock()
	o.h.cacheMaps[o.name]++
	o.h.mu.Unlock()
	cm := &CacheMap{Digest: digest.FromString(o.sp.key), NoCache: o.sp.noCache, Components: o.sp.components}
	for _, i := range o.sp.content {
		for len(cm.Deps) <= i {
			cm.Deps = append(cm.Deps, Dep{})
		}
		cm.Deps[i].Content = o.checksum
	}
	return cm, nil
}

func (o *fakeOp) checksum(ctx context.Context, r Result) (ContentSum, error) {
	o.h.mu.Lock()
	o.h.contents[o.name]++
	o.h.mu.Unlock()
	files := r.(*fakeResult).files
	sum := ContentSum{Files: map[string]digest.Digest{}}
	var all strings.Builder
	for _, n := range slices.Sorted(maps.Keys(files)) {
		sum.Files[n] = digest.FromString(files[n])
		fmt.Fprintf(&all, "%s=%s\n", n, sum.Files[n])
	}
	sum.Digest = digest.FromString(all.String())
	return sum, nil
}

func (o *fakeOp) Exec(ctx context.Context, inputs []Result) (Result, error) {
	o.h.mu.Lock()
	o.h.execs[o.name]++
	o.h.runs[o.name]++
	n := o.h.runs[o.name]
	o.h.mu.Unlock()
	running := o.h.running.Add(1)
	defer o.h.running.Add(-1)
	for {
		m := o.h.maxRunning.Load()
		if running <= m || o.h.maxRunning.CompareAndSwap(m, running) {
			break
		}
	}
	if o.sp.exec != nil {
		return o.sp.exec(ctx, inputs)
	}
	files := map[string]string{}
	for _, in := range inputs {
		if in != nil {
			maps.Copy(files, in.(*fakeResult).files)
		}
	}
	maps.Copy(files, o.sp.files)
	return &fakeResult{id: fmt.Sprintf("%s#%d", o.name, n), files: files}, nil
}

// memStore is an in-memory CacheStore.
type memStore struct {
	mu      sync.Mutex
	results map[digest.Digest]Result
	steps   map[string]*StepRecord
}

func newMemStore() *memStore {
	return &memStore{results: map[digest.Digest]Result{}, steps: map[string]*StepRecord{}}
}

func (s *memStore) Lookup(_ context.Context, key digest.Digest) (Result, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.results[key]
	return r, ok, nil
}

func (s *memStore) Save(_ context.Context, key digest.Digest, r Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[key] = r
	return nil
}

func (s *memStore) LoadStep(_ context.Context, id string) (*StepRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps[id], nil
}

func (s *memStore) SaveStep(_ context.Context, id string, rec *StepRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps[id] = rec
	return nil
}

// evict forgets every result, keeping step records.
func (s *memStore) evict() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.results)
}
