// Package ops implements the llb ops for the solver over strata's store: a
// Worker resolves each vertex to an op that knows how to key it (CacheMap)
// and how to produce its output (Exec).
//
// Every output is a *Ref: a committed snapshot (images, RUN, COPY), a host
// directory (the local build context, read in place and never copied into
// the store unless a COPY selects from it), or neither (scratch). Active
// snapshots an op prepares are committed on success and removed on failure
// (a failed RUN's once Worker.OnRunError has seen it), so a failed step
// leaves the store as it was.
package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/contenthash"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// Ref is the output of one vertex.
type Ref struct {
	// Snapshot is a committed snapshot name; empty with an empty Dir is scratch.
	// A lazy ref's snapshot is made when first read (see Ref.Ready).
	Snapshot string
	// Dir is a host directory read in place (the local context).
	Dir string
	// Excludes are the .dockerignore rules that apply to Dir.
	Excludes []string

	lazy *lazyRef
}

// ID is what the cache records for the result.
func (r *Ref) ID() string { return r.Snapshot }

// lazyRef is a result known by its layers (an imported cache record, a
// base image resolved but not pulled) whose snapshot, named by the layers'
// chain ID, is unpacked only when a step reads its files. An export reads
// the layers alone: a build whose cached result only goes to a registry
// never downloads it.
type lazyRef struct {
	layers []cache.Layer
	// unpack fetches what the content store lacks and unpacks the layers
	// into the snapshot.
	unpack func(ctx context.Context) error

	mu   sync.Mutex
	done bool
	// then run once the snapshot is made (records of the result).
	then []func() error
}

// whenReady runs fn once r's snapshot exists: now, or after the unpack.
func (r *Ref) whenReady(fn func() error) error {
	if r.lazy == nil {
		return fn()
	}
	r.lazy.mu.Lock()
	defer r.lazy.mu.Unlock()
	if r.lazy.done {
		return fn()
	}
	r.lazy.then = append(r.lazy.then, fn)
	return nil
}

// Layers returns the layers of a result whose snapshot is not made yet,
// base first; ok is false for any other result.
func (r *Ref) Layers() (layers []cache.Layer, ok bool) {
	if r == nil || r.lazy == nil {
		return nil, false
	}
	r.lazy.mu.Lock()
	defer r.lazy.mu.Unlock()
	if r.lazy.done {
		return nil, false
	}
	return r.lazy.layers, true
}

// Ready makes the snapshot of a lazy ref, once; other refs are ready as
// they are. A failed attempt (a cancelled step) is tried again by the next
// reader.
func (r *Ref) Ready(ctx context.Context) error {
	if r == nil || r.lazy == nil {
		return nil
	}
	l := r.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	if err := l.unpack(ctx); err != nil {
		return err
	}
	l.done = true
	for _, fn := range l.then {
		if err := fn(); err != nil {
			return err
		}
	}
	l.then = nil
	return nil
}

// ready is the ref of an input result, its snapshot made.
func ready(ctx context.Context, r solver.Result) (*Ref, error) {
	ref := refOf(r)
	return ref, ref.Ready(ctx)
}

// Worker holds the parts of the store the ops use.
type Worker struct {
	Snapshotter snapshot.Snapshotter
	Content     *content.Store
	Records     *cache.Records
	Executor    executor.Executor
	Checksums   *contenthash.Cache
	// TempDir holds short-lived mount points; it must be on the store root so
	// a sweep at start can find what a killed process left.
	TempDir string
	// CacheMountDir holds the directories of RUN --mount=type=cache.
	CacheMountDir string
	// ContextDir is the build context for local sources.
	ContextDir string
	Progress   progress.Sink
	// Secrets are the build's secrets by id (RUN --mount=type=secret and
	// secret env variables); they never enter a cache key or a layer.
	Secrets map[string][]byte
	// SSH maps ssh ids to agent sockets on the host (RUN --mount=type=ssh).
	SSH map[string]string
	// AllowInsecure lets RUN --security=insecure steps run.
	AllowInsecure bool
	// Blobs fetches the layers of lazy results (base images resolved but
	// not pulled, imported cache records) that the content store lacks.
	Blobs cache.BlobFetcher
	// OnRunError, when set, is called when the command of a RUN step
	// exits non-zero, before the step's root filesystem and mounts are
	// released; the step fails with FailedRun.Err once it returns. It may
	// be called for several steps at once.
	OnRunError func(ctx context.Context, f *FailedRun)
}

// Resolve returns the op for a vertex.
func (w *Worker) Resolve(v *llb.Vertex) (solver.Op, error) {
	switch op := v.Op.(type) {
	case *llb.SourceOp:
		switch op.Source {
		case llb.SourceImage:
			return &imageOp{w: w, v: v, op: op}, nil
		case llb.SourceLocal:
			return &localOp{w: w, op: op}, nil
		case llb.SourceHTTP:
			return &httpOp{w: w, v: v, op: op}, nil
		case llb.SourceGit:
			return &gitOp{w: w, v: v, op: op}, nil
		default:
			return nil, fmt.Errorf("%s: %s sources are not supported yet", v.Meta.Name, op.Source)
		}
	case *llb.ExecOp:
		return &execOp{w: w, v: v, op: op}, nil
	case *llb.FileOp:
		return &fileOp{w: w, v: v, op: op}, nil
	case *llb.MergeOp:
		return &mergeOp{w: w, v: v}, nil
	}
	return nil, fmt.Errorf("unknown op %T", v.Op)
}

// opDigest hashes a value that describes an op for its cache key.
func opDigest(kind string, v any) digest.Digest {
	b, err := json.Marshal(struct {
		Kind string
		V    any
	}{kind, v})
	if err != nil {
		panic(fmt.Sprintf("ops: marshal %s: %v", kind, err))
	}
	return digest.FromBytes(b)
}

func randomID(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func refOf(r solver.Result) *Ref {
	if r == nil {
		return &Ref{}
	}
	return r.(*Ref)
}

// commit commits an active snapshot under a fresh name.
func (w *Worker) commit(ctx context.Context, active string) (*Ref, error) {
	name := randomID("s-")
	if err := w.Snapshotter.Commit(ctx, name, active); err != nil {
		_ = w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, fmt.Errorf("commit snapshot: %w", err)
	}
	return &Ref{Snapshot: name}, nil
}

// withView mounts a read-only view of ref (a snapshot or a host dir) and
// calls fn with its root on the host.
func (w *Worker) withView(ctx context.Context, ref *Ref, fn func(root string) error) error {
	if ref.Dir != "" {
		return fn(ref.Dir)
	}
	key := randomID("view-")
	mounts, err := w.Snapshotter.View(ctx, key, ref.Snapshot)
	if err != nil {
		return fmt.Errorf("view snapshot %s: %w", ref.Snapshot, err)
	}
	defer w.Snapshotter.Remove(context.WithoutCancel(ctx), key)
	return mount.WithTemp(w.TempDir, mounts, fn)
}

// logWriter turns a step's output into progress events.
type logWriter struct {
	sink   progress.Sink
	v      *llb.Vertex
	stream int
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.sink.Emit(progress.Event{Vertex: l.v.Digest(), Name: l.v.Meta.Name, Status: progress.Log, Time: time.Now(), Data: append([]byte(nil), p...), Stream: l.stream})
	return len(p), nil
}
