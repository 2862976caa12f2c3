// Package solver runs an llb graph with a cache: it decides which vertices
// must execute, runs them in parallel under a limit, and explains every
// cache miss.
//
// Vocabulary:
//
//   - An Op is what a vertex does; a Resolver turns each *llb.Vertex into one.
//   - A CacheMap is an op's description of its own cache key: the op's Digest
//     (everything that is not an input), one Dep per input, and named
//     Components of the digest for explaining misses.
//   - A vertex's cache key is sha256 over {KeyVersion, CacheMap.Digest, one
//     entry per input}. An input entry is the input's own cache key, or, for
//     a Dep with a Content function, "content:" plus the checksum of the part
//     of the input's result the op reads (the files a COPY selects). A
//     content-keyed input must therefore be materialized (looked up or run)
//     before the key is known; a definition-keyed one need not.
//   - A CacheStore maps keys to Results, and step IDs (llb.Meta.StepID) to the
//     StepRecord of that step's last build.
//   - A hit is a key found in the store: the vertex is not executed, and
//     neither are its inputs unless something else needs their results.
//     A miss executes the vertex after its inputs, saves its result under its
//     key, and records the step. The reason of a miss is computed against the
//     previous StepRecord ("command changed", "app/main.go changed", ...)
//     and reported in the Started progress event.
//
// One Solve: Solve resolves every vertex below root once (vertices with the
// same llb digest are one), then asks for root's result. Asking for a result
// computes the key (recursively asking inputs for keys, or for results where
// a Dep is content-keyed), looks it up, and on a miss asks all inputs for
// their results in parallel and calls Exec. Each vertex computes its key and
// result at most once per Solve whoever asks; Exec and Content calls hold one
// of Options.Jobs slots, waiting for inputs holds none. The first error
// cancels the solve; Solve returns after every goroutine it started returned.
package solver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

// KeyVersion is hashed into every cache key; changing the key format bumps it.
const KeyVersion = "strata.cache.v1"

// Result is an op's output; the solver treats it as opaque except for its ID,
// which the cache store records.
type Result interface{ ID() string }

// Op is the executable form of one vertex.
type Op interface {
	// CacheMap says how to key the op; called at most once per vertex per Solve.
	CacheMap(ctx context.Context) (*CacheMap, error)
	// Exec runs the op on its inputs' results (nil entries for nil/scratch inputs).
	Exec(ctx context.Context, inputs []Result) (Result, error)
}

// CacheMap is how an op is keyed.
type CacheMap struct {
	Digest digest.Digest // the op's own key: everything that is not an input
	// Deps has one entry per vertex input; missing trailing entries key
	// their input by its cache key.
	Deps    []Dep
	NoCache bool // always Exec, never Save (e.g. the local context source: cheap)
	// Components are named parts of Digest, for explaining misses
	// ("command", "env FOO", "user", "arg VERSION").
	Components []Component
}

// Component is one named part of an op's key.
type Component struct{ Name, Value string }

// Dep says how one input enters the key.
type Dep struct {
	// Content, when set, keys this input by the content the op selects from
	// the input's result (COPY sources), instead of by the input's own key;
	// Files lets a miss name the files that changed.
	Content func(ctx context.Context, r Result) (ContentSum, error)
}

// ContentSum is the checksum of what an op reads from an input.
type ContentSum struct {
	Digest digest.Digest
	Files  map[string]digest.Digest
}

// CacheStore keeps results by key and the key parts of each step's last build.
type CacheStore interface {
	Lookup(ctx context.Context, key digest.Digest) (Result, bool, error) // a hit yields a loaded result
	Save(ctx context.Context, key digest.Digest, r Result) error
	// LoadStep returns the key parts of the last build of a step: nil, nil if none.
	LoadStep(ctx context.Context, stepID string) (*StepRecord, error)
	SaveStep(ctx context.Context, stepID string, rec *StepRecord) error
}

// Linker is an optional interface of a CacheStore: it remembers which
// cache key a link key stood for. A link key keys an op whose content-keyed
// inputs are cacheable vertices (a COPY --from another stage) by those
// inputs' cache keys instead of their content: a later solve that finds the
// link needs neither the input's result nor its checksum to know the key,
// so a cached stage that only feeds a cached step is never loaded.
type Linker interface {
	LookupLink(ctx context.Context, link digest.Digest) (digest.Digest, bool, error)
	SaveLink(ctx context.Context, link, key digest.Digest) error
}

// UseRecorder is an optional interface of a CacheStore: it learns every
// result a Solve used with its key and step, whether it came from the cache
// or was just made and saved. A cache export is made from these.
type UseRecorder interface {
	Used(key digest.Digest, stepID string, r Result)
}

// StepRecord is what a miss of a step is explained against.
type StepRecord struct {
	Key        digest.Digest
	Components []Component
	Inputs     []InputRecord
}

// InputRecord is one input of a recorded step: the input's cache key, or for
// a content-keyed input its ContentSum.Digest and Files. Files is stored as
// "Sources": records that kept it as "Files" had it keyed by destination
// path and are read without it.
type InputRecord struct {
	Key   digest.Digest
	Files map[string]digest.Digest `json:"Sources"` // content deps only
}

// Resolver turns a vertex into its op.
type Resolver func(v *llb.Vertex) (Op, error)

// Options configure a Solver.
type Options struct {
	Resolve Resolver
	// Cache stores results and step records; nil caches nothing.
	Cache CacheStore
	// Jobs bounds concurrent Exec (and Content) calls of all Solves of the
	// Solver; <=0 means runtime.NumCPU().
	Jobs int
	// Progress receives one Started/Cached/Done/Error event per named
	// vertex. A Started event's Since is when the vertex began waiting for
	// a job slot.
	Progress progress.Sink
	// NoCache runs every vertex even on a hit and saves the new results.
	NoCache bool
}

// Solver solves graphs; one Solver may run several Solves at once.
type Solver struct {
	opts Options
	sem  chan struct{} // one token per running Exec or Content call, across Solves
}

// New returns a Solver with opts, defaults filled in.
func New(opts Options) *Solver {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	if opts.Cache == nil {
		opts.Cache = nopStore{}
	}
	return &Solver{opts: opts, sem: make(chan struct{}, opts.Jobs)}
}

// VertexError is a failure of one vertex: its Exec, its CacheMap, its cache
// lookup or save. Errors of inputs reach dependents unwrapped, so a solve
// error carries exactly one VertexError, the one of the vertex that failed.
type VertexError struct {
	Vertex *llb.Vertex
	Err    error
}

func (e *VertexError) Error() string {
	return fmt.Sprintf("%s: %v", vertexName(e.Vertex), e.Err)
}

func (e *VertexError) Unwrap() error { return e.Err }

func vertexName(v *llb.Vertex) string {
	if v.Meta.Name != "" {
		return v.Meta.Name
	}
	return fmt.Sprintf("%s op %s", v.Op.Kind(), v.Digest().Encoded()[:12])
}

// Solve builds root and returns its result (nil for a nil root: scratch).
func (s *Solver) Solve(ctx context.Context, root *llb.Vertex) (Result, error) {
	if root == nil {
		return nil, nil
	}
	if s.opts.Resolve == nil {
		return nil, errors.New("solve: no resolver")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st := &solve{
		opts:     &s.opts,
		cancel:   cancel,
		sem:      s.sem,
		vertices: map[digest.Digest]*vertex{},
	}
	rv, err := st.load(root)
	if err != nil {
		return nil, err
	}
	r, err := st.result(ctx, rv)
	if first := st.firstErr(); first != nil {
		return nil, first
	}
	if err != nil {
		return nil, err
	}
	st.reportCovered()
	return r, nil
}

// cacheKey hashes the versioned key struct of a vertex.
func cacheKey(op digest.Digest, inputs []string) digest.Digest {
	b, err := json.Marshal(struct {
		Version string
		Op      digest.Digest
		Inputs  []string
	}{KeyVersion, op, inputs})
	if err != nil {
		panic(fmt.Sprintf("solver: marshal cache key: %v", err))
	}
	return digest.FromBytes(b)
}

// nopStore caches nothing.
type nopStore struct{}

func (nopStore) Lookup(context.Context, digest.Digest) (Result, bool, error) { return nil, false, nil }
func (nopStore) Save(context.Context, digest.Digest, Result) error           { return nil }
func (nopStore) LoadStep(context.Context, string) (*StepRecord, error)       { return nil, nil }
func (nopStore) SaveStep(context.Context, string, *StepRecord) error         { return nil }
