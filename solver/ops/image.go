package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/progress"
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
	layers := make([]cache.Layer, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = cache.Layer{DiffID: img.RootFS.DiffIDs[i], Blob: l}
	}
	return o.w.lazyChain(ctx, o.op.Ref, layers, nil), nil
}

// ChainID extends a layer chain ID by one diff ID (OCI image spec).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// lazyChain is the result of a chain of layers, base first: its snapshot
// if already unpacked, else a lazy ref that fetches and unpacks the layers
// (unpackChain) when first read, under a progress vertex "pull WHAT" (or
// "unpack WHAT" when nothing is downloaded), and then calls done (when
// set) with the snapshot's name.
func (w *Worker) lazyChain(ctx context.Context, what string, layers []cache.Layer, done func(snapshot string) error) *Ref {
	names := ChainNames(layers)
	if len(names) == 0 {
		return &Ref{}
	}
	top := names[len(names)-1]
	if _, err := w.Snapshotter.Stat(ctx, top); err == nil {
		return &Ref{Snapshot: top}
	}
	unpack := func(ctx context.Context) error {
		if err := w.unpackChain(ctx, what, layers, names); err != nil {
			return err
		}
		if done != nil {
			return done(top)
		}
		return nil
	}
	return &Ref{Snapshot: top, lazy: &lazyRef{layers: layers, unpack: unpack}}
}

// unpackChain makes the snapshots names of layers (from ChainNames) that
// are missing. Blobs the content store lacks are fetched through
// Worker.Blobs, at most a few at once and in order, and each layer is
// unpacked as soon as its blob and its parent are there: downloads overlap
// the unpacking.
func (w *Worker) unpackChain(ctx context.Context, what string, layers []cache.Layer, names []string) error {
	start := len(layers)
	for start > 0 {
		if _, err := w.Snapshotter.Stat(ctx, names[start-1]); err == nil {
			break
		}
		start--
	}
	if start == len(layers) {
		return nil
	}
	sink := w.Progress
	if sink == nil {
		sink = progress.Discard
	}
	// arrived[i] closes when layer i's blob is in the content store; byDigest
	// lists the layers of each blob to fetch.
	arrived := make([]chan struct{}, len(layers))
	byDigest := map[digest.Digest][]int{}
	var missing []ocispec.Descriptor
	for i := start; i < len(layers); i++ {
		arrived[i] = make(chan struct{})
		d := layers[i].Blob
		if layers[i].Empty {
			close(arrived[i]) // no blob
			continue
		}
		if _, err := w.Content.Info(ctx, d.Digest); err == nil {
			close(arrived[i])
			continue
		}
		if len(byDigest[d.Digest]) == 0 {
			missing = append(missing, d)
		}
		byDigest[d.Digest] = append(byDigest[d.Digest], i)
	}
	verb := "unpack "
	if len(missing) > 0 {
		verb = "pull "
	}
	v := progress.Event{Vertex: digest.FromString(verb + what), Name: verb + what}
	emit := func(e progress.Event) {
		e.Vertex, e.Name, e.Time = v.Vertex, v.Name, time.Now()
		sink.Emit(e)
	}
	emit(progress.Event{Status: progress.Started})
	err := w.fetchAndUnpack(ctx, layers, names, start, arrived, byDigest, missing, emit)
	if err != nil {
		err = fmt.Errorf("%s%s: %w", verb, what, err)
		emit(progress.Event{Status: progress.Error, Err: err.Error()})
		return err
	}
	emit(progress.Event{Status: progress.Done})
	return nil
}

// fetchAndUnpack fetches missing (the blobs byDigest maps to the layers
// they close arrived for) and unpacks layers[start:] as their blobs arrive.
func (w *Worker) fetchAndUnpack(ctx context.Context, layers []cache.Layer, names []string, start int, arrived []chan struct{}, byDigest map[digest.Digest][]int, missing []ocispec.Descriptor, emit func(progress.Event)) error {
	var missingBytes int64
	for _, d := range missing {
		missingBytes += d.Size
	}
	fetchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetchErr := make(chan error, 1)
	if len(missing) == 0 {
		fetchErr <- nil
	} else if w.Blobs == nil {
		return fmt.Errorf("layer %s is not in the content store", missing[0].Digest)
	} else {
		emit(progress.Event{Status: progress.Log, Stream: 1, Data: fmt.Appendf(nil, "fetching %d layers, %d bytes\n", len(missing), missingBytes)})
		var mu sync.Mutex
		each := func(d ocispec.Descriptor) {
			mu.Lock()
			defer mu.Unlock()
			for _, i := range byDigest[d.Digest] {
				close(arrived[i])
			}
			delete(byDigest, d.Digest) // a second call for d is a no-op
		}
		go func() { fetchErr <- w.Blobs.Fetch(fetchCtx, w.Content, missing, each) }()
	}
	parent := ""
	if start > 0 {
		parent = names[start-1]
	}
	for i := start; i < len(layers); i++ {
		select {
		case <-arrived[i]:
		case err := <-fetchErr:
			if err != nil {
				return err
			}
			fetchErr <- nil // keep the answer for the next layers
			select {
			case <-arrived[i]:
			default:
				return fmt.Errorf("layer %s was not fetched", layers[i].Blob.Digest)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := w.unpackLayer(ctx, names[i], parent, layers[i]); err != nil {
			return fmt.Errorf("unpack layer %d of %d (%s): %w", i+1, len(layers), layers[i].Blob.Digest, err)
		}
		parent = names[i]
	}
	cancel()
	if len(missing) > 0 {
		return <-fetchErr // the fetch is over: every blob arrived
	}
	return nil
}

// unpackLayer is unpack of a layer whose record (its creation time) is
// kept as given.
func (w *Worker) unpackLayer(ctx context.Context, name, parent string, l cache.Layer) error {
	blob, diffID := l.Blob, l.DiffID
	if _, err := w.Snapshotter.Stat(ctx, name); err == nil {
		return nil
	}
	active := randomID("unpack-")
	var got digest.Digest
	var err error
	if l.Empty {
		// A step that changed nothing: an empty snapshot keeps its place.
		if _, err = w.Snapshotter.Prepare(ctx, active, parent); err != nil {
			return err
		}
	} else {
		f, oerr := w.Content.Open(ctx, blob.Digest)
		if oerr != nil {
			return oerr
		}
		defer f.Close()
		mounts, perr := w.Snapshotter.Prepare(ctx, active, parent)
		if perr != nil {
			return perr
		}
		got, err = layer.Apply(ctx, mounts, f)
		if err == nil && got != diffID {
			err = fmt.Errorf("layer %s has diff id %s, config says %s", blob.Digest, got, diffID)
		}
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
