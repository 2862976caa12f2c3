package solver

import (
	"context"
	"fmt"
	"sync"
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

	mu  sync.Mutex
	err error // the first VertexError
}

// vertex is one distinct llb digest of the graph, with its memoized key and result.
type vertex struct {
	v      *llb.Vertex
	op     Op
	inputs []*vertex // nil entries are scratch

	keyOnce sync.Once
	key     *keyInfo
	keyErr  error

	resOnce sync.Once
	res     Result
	resErr  error
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
	e.Vertex = x.v.Digest()
	e.Name = x.v.Meta.Name
	e.Time = time.Now()
	st.opts.Progress.Emit(e)
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

func (st *solve) computeKey(ctx context.Context, x *vertex) (*keyInfo, error) {
	cm, err := x.op.CacheMap(ctx)
	if err != nil {
		return nil, st.fail(x, fmt.Errorf("compute cache map: %w", err))
	}
	if cm == nil {
		return nil, st.fail(x, fmt.Errorf("compute cache map: op %T returned none", x.op))
	}
	if len(cm.Deps) > len(x.inputs) {
		return nil, st.fail(x, fmt.Errorf("cache map has %d deps for %d inputs", len(cm.Deps), len(x.inputs)))
	}
	link, err := st.linkKey(ctx, x, cm)
	if err != nil || link == "" {
		if err != nil {
			return nil, err
		}
		return st.fullKey(ctx, x, cm)
	}
	linker := st.opts.Cache.(Linker)
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

// linkKey is x's link key: its inputs keyed by their cache keys alone.
// It is "" where a link cannot stand for the key: the store keeps no
// links, the cache is not used for x, x reads no input's content, or an
// input it reads is not a cached vertex (the build context is read afresh
// every time, and its key says nothing of its content).
func (st *solve) linkKey(ctx context.Context, x *vertex, cm *CacheMap) (digest.Digest, error) {
	if _, ok := st.opts.Cache.(Linker); !ok || cm.NoCache || st.opts.NoCache || x.v.Meta.IgnoreCache {
		return "", nil
	}
	parts := make([]string, len(x.inputs))
	content := false
	for i, in := range x.inputs {
		if in == nil {
			continue
		}
		k, err := st.keyOf(ctx, in)
		if err != nil {
			return "", err
		}
		parts[i] = string(k.key)
		if i < len(cm.Deps) && cm.Deps[i].Content != nil {
			if k.cm.NoCache {
				return "", nil
			}
			content = true
		}
	}
	if !content {
		return "", nil
	}
	return cacheKey(cm.Digest, append(parts, "link")), nil
}

// fullKey computes x's key, reading the content its content-keyed inputs
// give it.
func (st *solve) fullKey(ctx context.Context, x *vertex, cm *CacheMap) (*keyInfo, error) {
	parts := make([]string, len(x.inputs))
	recs := make([]InputRecord, len(x.inputs))
	err := each(x, func(i int, in *vertex) error {
		var content func(context.Context, Result) (ContentSum, error)
		if i < len(cm.Deps) {
			content = cm.Deps[i].Content
		}
		if content == nil {
			k, err := st.keyOf(ctx, in)
			if err != nil {
				return err
			}
			parts[i], recs[i] = string(k.key), InputRecord{Key: k.key}
			return nil
		}
		r, err := st.result(ctx, in)
		if err != nil {
			return err
		}
		sum, err := st.content(ctx, x, i, content, r)
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
		// The link's key missed: compute it in full (the inputs' content
		// and the files a miss reason names), and look that up.
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
	release, err := st.acquire(ctx)
	if err != nil {
		return nil, err
	}
	st.emit(x, progress.Event{Status: progress.Started, Reason: reason})
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
