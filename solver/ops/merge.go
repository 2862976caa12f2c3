package ops

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// mergeOp stacks its inputs (COPY --link): a writable snapshot of the bottom
// input gets the layers of every upper input unpacked into it, in order.
//
// An upper input's layers are the diffs of its snapshot chain, each made
// and compressed once and recorded in cache.Records like the layers of an
// exported image. When exactly one non-empty layer lands on the bottom (a
// COPY --link onto a stage root), the merged snapshot's layer record names
// that same blob, so the export reuses it instead of diffing and
// compressing again, and the layer is byte-for-byte the same whatever the
// bottom was.
type mergeOp struct {
	w *Worker
	v *llb.Vertex
}

// CacheMap keys a merge by its inputs' keys alone: the op has no fields.
func (o *mergeOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	return &solver.CacheMap{Digest: opDigest("merge", len(o.v.Inputs))}, nil
}

func (o *mergeOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	refs := make([]*Ref, len(inputs))
	for i, in := range inputs {
		refs[i] = refOf(in)
		if refs[i].Dir != "" {
			return nil, fmt.Errorf("merge input %d: host directory %s is not a snapshot", i, refs[i].Dir)
		}
	}
	bottom, uppers := refs[0], nonScratch(refs[1:])
	if len(uppers) == 0 {
		return &Ref{Snapshot: bottom.Snapshot}, nil
	}
	if bottom.Snapshot == "" && len(uppers) == 1 {
		// Scratch below one tree is that tree: its snapshot and layers as they are.
		return &Ref{Snapshot: uppers[0].Snapshot}, nil
	}
	var layers []cache.Layer
	for _, r := range uppers {
		ls, err := o.w.chainLayers(ctx, r.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		layers = append(layers, ls...)
	}
	active := randomID("merge-")
	mounts, err := o.w.Snapshotter.Prepare(ctx, active, bottom.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("merge: prepare over %q: %w", bottom.Snapshot, err)
	}
	var applied []cache.Layer
	for _, l := range layers {
		if l.Empty {
			continue
		}
		if err := o.w.applyLayer(ctx, mounts, l); err != nil {
			_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
			return nil, fmt.Errorf("merge: %w", err)
		}
		applied = append(applied, l)
	}
	ref, err := o.w.commit(ctx, active)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if len(applied) == 1 {
		if err := o.w.Records.SaveLayer(ref.Snapshot, applied[0]); err != nil {
			return nil, fmt.Errorf("merge: record layer of %s: %w", ref.Snapshot, err)
		}
	}
	return ref, nil
}

// nonScratch drops the refs that are the empty tree.
func nonScratch(refs []*Ref) []*Ref {
	var out []*Ref
	for _, r := range refs {
		if r.Snapshot != "" {
			out = append(out, r)
		}
	}
	return out
}

// applyLayer unpacks a layer blob into an active snapshot and checks its
// diff ID.
func (w *Worker) applyLayer(ctx context.Context, mounts []snapshot.Mount, l cache.Layer) error {
	f, err := w.Content.Open(ctx, l.Blob.Digest)
	if err != nil {
		return fmt.Errorf("open layer %s: %w", l.Blob.Digest, err)
	}
	defer f.Close()
	got, err := layer.Apply(ctx, mounts, f)
	if err != nil {
		return err
	}
	if got != l.DiffID {
		return fmt.Errorf("layer %s has diff id %s, recorded %s", l.Blob.Digest, got, l.DiffID)
	}
	return nil
}

// chainLayers returns the layers of a committed snapshot's chain, bottom
// first, making and recording those not made before.
func (w *Worker) chainLayers(ctx context.Context, name string) ([]cache.Layer, error) {
	var chain []string
	for n := name; n != ""; {
		info, err := w.Snapshotter.Stat(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("stat snapshot %s: %w", n, err)
		}
		chain = append([]string{n}, chain...)
		n = info.Parent
	}
	out := make([]cache.Layer, len(chain))
	for i, n := range chain {
		parent := ""
		if i > 0 {
			parent = chain[i-1]
		}
		l, err := w.snapshotLayer(ctx, n, parent)
		if err != nil {
			return nil, fmt.Errorf("layer of %s: %w", n, err)
		}
		out[i] = *l
	}
	return out, nil
}

// snapshotLayer returns the recorded layer of a committed snapshot, or
// diffs it against its parent, compresses the diff into the content store
// and records it, the way an image export does.
func (w *Worker) snapshotLayer(ctx context.Context, name, parent string) (*cache.Layer, error) {
	if l, err := w.Records.Layer(name); err != nil || l != nil {
		return l, err
	}
	var lower []snapshot.Mount
	if parent != "" {
		key := randomID("merge-lower-")
		m, err := w.Snapshotter.View(ctx, key, parent)
		if err != nil {
			return nil, fmt.Errorf("view %s: %w", parent, err)
		}
		defer w.Snapshotter.Remove(context.WithoutCancel(ctx), key)
		lower = m
	}
	key := randomID("merge-upper-")
	upper, err := w.Snapshotter.View(ctx, key, name)
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", name, err)
	}
	defer w.Snapshotter.Remove(context.WithoutCancel(ctx), key)
	upper = ownUpper(upper)

	cw, err := w.Content.Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer cw.Close()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		n, err := layer.WriteDiff(ctx, pw, lower, upper, layer.DiffOptions{})
		pw.CloseWithError(err)
		done <- n
	}()
	diffID, blob, err := layer.Compress(pr, cw)
	pr.CloseWithError(err) // unblocks the diff on failure
	entries := <-done
	if err != nil {
		return nil, err
	}
	l := cache.Layer{DiffID: diffID, Blob: blob, Empty: entries == 0}
	if !l.Empty {
		if err := cw.Commit(blob.Size, blob.Digest); err != nil {
			return nil, err
		}
	}
	if err := w.Records.SaveLayer(name, l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ownUpper turns a read-only overlay view of a snapshot into a mount whose
// upperdir is the snapshot's own directory (the first lowerdir), where its
// diff lives; WriteDiff then reads only that directory. Other mounts are
// returned unchanged.
func ownUpper(ms []snapshot.Mount) []snapshot.Mount {
	if len(ms) != 1 || ms[0].Type != "overlay" {
		return ms
	}
	for _, o := range ms[0].Options {
		if strings.HasPrefix(o, "upperdir=") {
			return ms
		}
	}
	for _, o := range ms[0].Options {
		if dirs, ok := strings.CutPrefix(o, "lowerdir="); ok {
			first, rest, _ := strings.Cut(dirs, ":")
			opts := []string{"upperdir=" + first}
			if rest != "" {
				opts = append(opts, "lowerdir="+rest)
			}
			return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: opts, Dir: ms[0].Dir}}
		}
	}
	return ms
}
