package solver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

// solve is the state of one Solve call.
type solve struct {
	opts     *Options
	cancel   context.CancelCauseFunc
	sem      chan struct{} // the Solver's job slots
	vertices map[digest.Digest]*vertex
	order    []*vertex // inputs before the vertices that read them

	mu  sync.Mutex
	err error // the first VertexError
}

// vertex is one distinct llb digest of the graph, with its memoized key and result.
type vertex struct {
	v      *llb.Vertex
	op     Op
	inputs []*vertex // nil entries are scratch

	cmOnce sync.Once
	cm     *CacheMap
	cmErr  error

	keyOnce sync.Once
	key     *keyInfo
	keyErr  error

	// dkey is the vertex's definition key (see defKey).
	dkeyOnce sync.Once
	dkey     digest.Digest
	dkeyErr  error
	// ignoresBelow is set when x or a vertex below it bypasses the cache
	// (--no-cache-filter): such a vertex must run, so no link skips it.
	ignoresBelow bool

	// sums memoizes the content of each content-keyed input.
	sumsOnce []sync.Once
	sums     []ContentSum
	sumsErr  []error

	resOnce sync.Once
	res     Result
	resErr  error

	reported atomic.Bool // an event of x was emitted
}

// keyInfo is a computed cache key with the parts a StepRecord keeps.
type keyInfo struct {
	key    digest.Digest
	cm     *CacheMap
	inputs []InputRecord
	// linked is set when key came from a link (see Linker): the inputs'
	// content was not read, so inputs lacks their files; a miss computes
	// the key in full before running the op.
	linked bool
}

// load resolves v and everything below it, merging vertices by digest. It
// runs before any goroutine starts, so llb digests are computed (and cached
// in the vertices) by one goroutine.
func (st *solve) load(v *llb.Vertex) (*vertex, error) {
	if x, ok := st.vertices[v.Digest()]; ok {
		return x, nil
	}
	x := &vertex{v: v, inputs: make([]*vertex, len(v.Inputs))}
	for i, in := range v.Inputs {
		if in == nil {
			continue
		}
		y, err := st.load(in)
		if err != nil {
			return nil, err
		}
		x.inputs[i] = y
	}
	op, err := st.opts.Resolve(v)
	if err != nil {
		return nil, &VertexError{Vertex: v, Err: fmt.Errorf("resolve %s op: %w", v.Op.Kind(), err)}
	}
	x.op = op
	st.vertices[v.Digest()] = x
	st.order = append(st.order, x)
	return x, nil
}

// fail records err as a failure of x, cancels the solve if it is the first
// failure, reports it, and returns the VertexError.
func (st *solve) fail(x *vertex, err error) error {
	ve, ok := err.(*VertexError)
	if !ok || ve.Vertex != x.v {
		ve = &VertexError{Vertex: x.v, Err: err}
	}
	st.mu.Lock()
	if st.err == nil {
		st.err = ve
		st.cancel(ve)
	}
	st.mu.Unlock()
	st.emit(x, progress.Event{Status: progress.Error, Err: ve.Err.Error()})
	return ve
}

func (st *solve) firstErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

func (st *solve) emit(x *vertex, e progress.Event) {
	if x.v.Meta.Name == "" {
		return
	}
	x.reported.Store(true)
	e.Vertex = x.v.Digest()
	e.Name = x.v.Meta.Name
	e.Time = time.Now()
	st.opts.Progress.Emit(e)
}

// reportCovered marks CACHED every named vertex a successful solve did not
// need to visit: a cache hit above it stood for it, as docker lists every
// step of a cached build.
func (st *solve) reportCovered() {
	for _, x := range st.order {
		if !x.reported.Load() {
			st.emit(x, progress.Event{Status: progress.Cached})
		}
	}
}

// acquire takes one job slot; release it with the returned function.
func (st *solve) acquire(ctx context.Context) (func(), error) {
	select {
	case st.sem <- struct{}{}:
		return func() { <-st.sem }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// each runs fn for every non-nil input of x in parallel and returns the
// first error after all have returned. A single input runs inline.
func each(x *vertex, fn func(i int, in *vertex) error) error {
	var idx []int
	for i, in := range x.inputs {
		if in != nil {
			idx = append(idx, i)
		}
	}
	if len(idx) == 1 {
		return fn(idx[0], x.inputs[idx[0]])
	}
	var g errgroup.Group
	for _, i := range idx {
		g.Go(func() error { return fn(i, x.inputs[i]) })
	}
	return g.Wait()
}

// keyOf returns x's cache key, computing it once.
func (st *solve) keyOf(ctx context.Context, x *vertex) (*keyInfo, error) {
	x.keyOnce.Do(func() { x.key, x.keyErr = st.computeKey(ctx, x) })
	return x.key, x.keyErr
}

// cacheMap is x's CacheMap, asked of the op once.
func (st *solve) cacheMap(ctx context.Context, x *vertex) (*CacheMap, error) {
	x.cmOnce.Do(func() {
		cm, err := x.op.CacheMap(ctx)
		switch {
		case err != nil:
			x.cmErr = st.fail(x, fmt.Errorf("compute cache map: %w", err))
		case cm == nil:
			x.cmErr = st.fail(x, fmt.Errorf("compute cache map: op %T returned none", x.op))
		case len(cm.Deps) > len(x.inputs):
			x.cmErr = st.fail(x, fmt.Errorf("cache map has %d deps for %d inputs", len(cm.Deps), len(x.inputs)))
		default:
			x.cm = cm
			x.sumsOnce = make([]sync.Once, len(x.inputs))
			x.sums = make([]ContentSum, len(x.inputs))
			x.sumsErr = make([]error, len(x.inputs))
		}
	})
	return x.cm, x.cmErr
}

// contentDep is the content function of x's input i, nil for an input
// keyed by its key.
func contentDep(cm *CacheMap, i int) func(context.Context, Result) (ContentSum, error) {
	if i < len(cm.Deps) {
		return cm.Deps[i].Content
	}
	return nil
}

func (st *solve) computeKey(ctx context.Context, x *vertex) (*keyInfo, error) {
	cm, err := st.cacheMap(ctx, x)
	if err != nil {
		return nil, err
	}
	linker, ok := st.opts.Cache.(Linker)
	if !ok || cm.NoCache || st.opts.NoCache || x.v.Meta.IgnoreCache {
		return st.fullKey(ctx, x, cm)
	}
	linkable, err := st.readsCachedInput(ctx, x, cm)
	if err != nil || !linkable {
		if err != nil {
			return nil, err
		}
		return st.fullKey(ctx, x, cm)
	}
	link, err := st.defKey(ctx, x)
	if err != nil {
		return nil, err
	}
	if x.ignoresBelow {
		return st.fullKey(ctx, x, cm)
	}
	if k, ok, err := linker.LookupLink(ctx, link); err != nil {
		return nil, st.fail(x, fmt.Errorf("look up cache link %s: %w", link, err))
	} else if ok {
		return &keyInfo{key: k, cm: cm, linked: true}, nil
	}
	ki, err := st.fullKey(ctx, x, cm)
	if err != nil {
		return nil, err
	}
	if err := linker.SaveLink(ctx, link, ki.key); err != nil {
		return nil, st.fail(x, fmt.Errorf("save cache link %s: %w", link, err))
	}
	return ki, nil
}

// readsCachedInput reports whether x keys an input by the content of a
// cached vertex's result (a COPY --from another stage): only then can a
// link stand for its key.
func (st *solve) readsCachedInput(ctx context.Context, x *vertex, cm *CacheMap) (bool, error) {
	for i, in := range x.inputs {
		if in == nil || contentDep(cm, i) == nil {
			continue
		}
		icm, err := st.cacheMap(ctx, in)
		if err != nil {
			return false, err
		}
		if !icm.NoCache {
			return true, nil
		}
	}
	return false, nil
}

// defKey is x's definition key: its op and its inputs' definition keys,
// where the content of an uncached input (the build context) is read as
// for the cache key, and that of a cached vertex is not. It is computed
// without running or loading any cached vertex, so the links of all the
// steps of a build are found at once, and on a miss the cache keys are
// computed with every input's work started in parallel, as without links.
func (st *solve) defKey(ctx context.Context, x *vertex) (digest.Digest, error) {
	x.dkeyOnce.Do(func() { x.dkey, x.dkeyErr = st.computeDefKey(ctx, x) })
	return x.dkey, x.dkeyErr
}

func (st *solve) computeDefKey(ctx context.Context, x *vertex) (digest.Digest, error) {
	cm, err := st.cacheMap(ctx, x)
	if err != nil {
		return "", err
	}
	parts := make([]string, len(x.inputs))
	var ignores atomic.Bool
	ignores.Store(x.v.Meta.IgnoreCache)
	err = each(x, func(i int, in *vertex) error {
		icm, err := st.cacheMap(ctx, in)
		if err != nil {
			return err
		}
		if fn := contentDep(cm, i); fn != nil && icm.NoCache {
			sum, err := st.inputContent(ctx, x, i, fn)
			if err != nil {
				return err
			}
			parts[i] = "content:" + string(sum.Digest)
			return nil
		}
		d, err := st.defKey(ctx, in)
		parts[i] = "def:" + string(d)
		if in.ignoresBelow {
			ignores.Store(true)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	x.ignoresBelow = ignores.Load()
	return cacheKey(cm.Digest, append(parts, "definition")), nil
}

// inputContent is the content x reads from its input i, computed once.
func (st *solve) inputContent(ctx context.Context, x *vertex, i int, fn func(context.Context, Result) (ContentSum, error)) (ContentSum, error) {
	x.sumsOnce[i].Do(func() {
		r, err := st.result(ctx, x.inputs[i])
		if err != nil {
			x.sumsErr[i] = err
			return
		}
		x.sums[i], x.sumsErr[i] = st.content(ctx, x, i, fn, r)
	})
	return x.sums[i], x.sumsErr[i]
}

// fullKey computes x's key, reading the content its content-keyed inputs
// give it.
func (st *solve) fullKey(ctx context.Context, x *vertex, cm *CacheMap) (*keyInfo, error) {
	parts := make([]string, len(x.inputs))
	recs := make([]InputRecord, len(x.inputs))
	err := each(x, func(i int, in *vertex) error {
		content := contentDep(cm, i)
		if content == nil {
			k, err := st.keyOf(ctx, in)
			if err != nil {
				return err
			}
			parts[i], recs[i] = string(k.key), InputRecord{Key: k.key}
			return nil
		}
		sum, err := st.inputContent(ctx, x, i, content)
		if err != nil {
			return err
		}
		parts[i] = "content:" + string(sum.Digest)
		recs[i] = InputRecord{Key: sum.Digest, Files: sum.Files}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &keyInfo{key: cacheKey(cm.Digest, parts), cm: cm, inputs: recs}, nil
}

// content checksums what x reads from its input i, holding a job slot.
func (st *solve) content(ctx context.Context, x *vertex, i int, fn func(context.Context, Result) (ContentSum, error), r Result) (ContentSum, error) {
	release, err := st.acquire(ctx)
	if err != nil {
		return ContentSum{}, err
	}
	defer release()
	sum, err := fn(ctx, r)
	if err != nil {
		return ContentSum{}, st.fail(x, fmt.Errorf("checksum input %d: %w", i, err))
	}
	return sum, nil
}

// result returns x's result, computing it once: from the cache or by Exec.
func (st *solve) result(ctx context.Context, x *vertex) (Result, error) {
	x.resOnce.Do(func() { x.res, x.resErr = st.build(ctx, x) })
	return x.res, x.resErr
}

func (st *solve) build(ctx context.Context, x *vertex) (Result, error) {
	ki, err := st.keyOf(ctx, x)
	if err != nil {
		return nil, err
	}
	cacheable := !ki.cm.NoCache
	useCache := cacheable && !st.opts.NoCache && !x.v.Meta.IgnoreCache
	if useCache {
		r, ok, err := st.opts.Cache.Lookup(ctx, ki.key)
		if err != nil {
			return nil, st.fail(x, fmt.Errorf("look up cache key %s: %w", ki.key, err))
		}
		if ok {
			st.used(x, ki.key, r)
			st.emit(x, progress.Event{Status: progress.Cached})
			return r, nil
		}
	}
	if ki.linked {
		// The link's key missed: the step runs (unless its key in full
		// differs and hits), so its inputs are needed anyway: they are
		// made first, all at once, then the key is computed in full (the
		// inputs' content and the files a miss reason names).
		err := each(x, func(i int, in *vertex) error {
			_, err := st.result(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		full, err := st.fullKey(ctx, x, ki.cm)
		if err != nil {
			return nil, err
		}
		if useCache && full.key != ki.key {
			r, ok, err := st.opts.Cache.Lookup(ctx, full.key)
			if err != nil {
				return nil, st.fail(x, fmt.Errorf("look up cache key %s: %w", full.key, err))
			}
			if ok {
				st.used(x, full.key, r)
				st.emit(x, progress.Event{Status: progress.Cached})
				return r, nil
			}
		}
		ki = full
	}
	var reason string
	if cacheable {
		if reason, err = st.missReason(ctx, x, ki, useCache); err != nil {
			return nil, st.fail(x, err)
		}
	}
	inputs := make([]Result, len(x.inputs))
	err = each(x, func(i int, in *vertex) error {
		r, err := st.result(ctx, in)
		inputs[i] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return st.exec(ctx, x, ki, inputs, reason)
}

// exec runs x's op in a job slot, then saves its result and step record.
func (st *solve) exec(ctx context.Context, x *vertex, ki *keyInfo, inputs []Result, reason string) (Result, error) {
	ready := time.Now()
	release, err := st.acquire(ctx)
	if err != nil {
		return nil, err
	}
	st.emit(x, progress.Event{Status: progress.Started, Reason: reason, Since: ready})
	r, err := x.op.Exec(ctx, inputs)
	release()
	if err != nil {
		return nil, st.fail(x, err)
	}
	if r == nil {
		return nil, st.fail(x, fmt.Errorf("%s op returned no result", x.v.Op.Kind()))
	}
	if !ki.cm.NoCache {
		if err := st.opts.Cache.Save(ctx, ki.key, r); err != nil {
			return nil, st.fail(x, fmt.Errorf("save result under cache key %s: %w", ki.key, err))
		}
		if id := x.v.Meta.StepID; id != "" {
			rec := &StepRecord{Key: ki.key, Components: ki.cm.Components, Inputs: ki.inputs}
			if err := st.opts.Cache.SaveStep(ctx, id, rec); err != nil {
				return nil, st.fail(x, fmt.Errorf("save record of step %s: %w", id, err))
			}
		}
		st.used(x, ki.key, r)
	}
	st.emit(x, progress.Event{Status: progress.Done})
	return r, nil
}

// used tells a recording cache store that x's result r, under key, was used.
func (st *solve) used(x *vertex, key digest.Digest, r Result) {
	if u, ok := st.opts.Cache.(UseRecorder); ok {
		u.Used(key, x.v.Meta.StepID, r)
	}
}

// missReason explains why x, about to run, missed the cache.
func (st *solve) missReason(ctx context.Context, x *vertex, ki *keyInfo, looked bool) (string, error) {
	if !looked {
		return ReasonNoCache, nil
	}
	id := x.v.Meta.StepID
	if id == "" {
		return ReasonNoPrevious, nil
	}
	rec, err := st.opts.Cache.LoadStep(ctx, id)
	if err != nil {
		return "", fmt.Errorf("load record of step %s: %w", id, err)
	}
	return explainMiss(rec, &StepRecord{Key: ki.key, Components: ki.cm.Components, Inputs: ki.inputs}), nil
}
