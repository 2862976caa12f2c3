package ops

import (
	"context"
	"fmt"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
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
		return bottom, nil // lazy or not, as it is
	}
	if bottom.Snapshot == "" && len(uppers) == 1 {
		// Scratch below one tree is that tree: its snapshot and layers as they are.
		return uppers[0], nil
	}
	for _, r := range refs {
		if err := r.Ready(ctx); err != nil {
			return nil, err
		}
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
func (w *Worker) applyLayer(ctx context.Context, mounts []mount.Mount, l cache.Layer) error {
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
	ls := &cache.Layers{Snapshotter: w.Snapshotter, Content: w.Content, Records: w.Records, TempDir: w.TempDir}
	chain, err := ls.Chain(ctx, name)
	if err != nil {
		return nil, err
	}
	return ls.OfChain(ctx, chain, nil)
}
