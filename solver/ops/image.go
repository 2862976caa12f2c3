package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// imageOp unpacks an image from the content store into snapshots named by
// chain ID, one per layer, so images sharing layers share snapshots.
type imageOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.SourceOp
}

func (o *imageOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	if o.op.Digest == "" {
		return nil, fmt.Errorf("image %s has no resolved digest", o.op.Ref)
	}
	return &solver.CacheMap{
		// The manifest digest alone: two names of one image share the cache.
		Digest:     opDigest("image", o.op.Digest),
		Components: []solver.Component{{Name: "image", Value: o.op.Ref + "@" + o.op.Digest.String()}},
	}, nil
}

func (o *imageOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	b, err := o.w.Content.ReadBlob(ctx, o.op.Digest)
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", o.op.Ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest of %s: %w", o.op.Ref, err)
	}
	cb, err := o.w.Content.ReadBlob(ctx, m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", o.op.Ref, err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(cb, &img); err != nil {
		return nil, fmt.Errorf("decode config of %s: %w", o.op.Ref, err)
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff ids", o.op.Ref, len(m.Layers), len(img.RootFS.DiffIDs))
	}
	parent := ""
	var chain digest.Digest
	for i, l := range m.Layers {
		chain = ChainID(chain, img.RootFS.DiffIDs[i])
		name := "layer-" + chain.Encoded()
		if err := o.w.unpack(ctx, name, parent, l, img.RootFS.DiffIDs[i]); err != nil {
			return nil, fmt.Errorf("unpack layer %d of %s: %w", i+1, o.op.Ref, err)
		}
		parent = name
	}
	return &Ref{Snapshot: parent}, nil
}

// ChainID extends a layer chain ID by one diff ID (OCI image spec).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// unpack makes the committed snapshot name from a layer blob on top of
// parent, unless it exists already.
func (w *Worker) unpack(ctx context.Context, name, parent string, blob ocispec.Descriptor, diffID digest.Digest) error {
	return w.unpackLayer(ctx, name, parent, cache.Layer{DiffID: diffID, Blob: blob})
}

// unpackLayer is unpack of a layer whose record (its creation time) is
// kept as given.
func (w *Worker) unpackLayer(ctx context.Context, name, parent string, l cache.Layer) error {
	blob, diffID := l.Blob, l.DiffID
	if _, err := w.Snapshotter.Stat(ctx, name); err == nil {
		return nil
	}
	f, err := w.Content.Open(ctx, blob.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	active := randomID("unpack-")
	mounts, err := w.Snapshotter.Prepare(ctx, active, parent)
	if err != nil {
		return err
	}
	got, err := layer.Apply(ctx, mounts, f)
	if err == nil && got != diffID {
		err = fmt.Errorf("layer %s has diff id %s, config says %s", blob.Digest, got, diffID)
	}
	if err != nil {
		_ = w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return err
	}
	if err := w.Snapshotter.Commit(ctx, name, active); err != nil {
		_ = w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		if !errors.Is(err, errdefs.ErrAlreadyExists) {
			return err
		}
	}
	return w.Records.SaveLayer(name, l)
}
