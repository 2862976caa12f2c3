package ops

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
)

// stagedFetcher copies blobs from another content store, one at a time in
// order, and holds back each blob until the layer before it is unpacked:
// an unpack that waited for every blob would never finish.
type stagedFetcher struct {
	t     *testing.T
	from  *content.Store
	w     *Worker
	names map[digest.Digest]string // blob -> the snapshot of the layer before it
}

func (f *stagedFetcher) Fetch(ctx context.Context, cs *content.Store, blobs []ocispec.Descriptor, each func(ocispec.Descriptor)) error {
	for _, b := range blobs {
		if prev := f.names[b.Digest]; prev != "" {
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := f.w.Snapshotter.Stat(ctx, prev); err == nil {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("layer %s was not unpacked before the next blob came", prev)
				}
				time.Sleep(time.Millisecond)
			}
		}
		data, err := f.from.ReadBlob(ctx, b.Digest)
		if err != nil {
			return err
		}
		if err := cs.WriteBlob(ctx, bytes.NewReader(data), b.Size, b.Digest); err != nil {
			return err
		}
		each(b)
	}
	return nil
}

// A lazy chain unpacks each layer as soon as its blob is there, while the
// later ones still download; it is recorded as a result once made, and an
// empty layer keeps its place in the chain.
func TestLazyChainUnpacksWhileFetching(t *testing.T) {
	ctx := context.Background()
	ws := mergeWorkers(t)
	src, dst := ws["overlay"], ws["naive"]
	ls := &cache.Layers{Snapshotter: src.Snapshotter, Content: src.Content, Records: src.Records, TempDir: src.TempDir}
	parent := ""
	var layers []cache.Layer
	for i, files := range []map[string]string{{"a": "1"}, {}, {"b": "2"}, {"c": "3"}} {
		name := commitTree(t, src, parent, writeFiles(files))
		l, err := ls.Of(ctx, name, parent, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l.Empty != (i == 1) {
			t.Fatalf("layer %d empty = %v", i, l.Empty)
		}
		now := time.Now()
		l.Created = &now
		layers = append(layers, *l)
		parent = name
	}
	names := ChainNames(layers)
	f := &stagedFetcher{t: t, from: src.Content, w: dst, names: map[digest.Digest]string{}}
	prev := ""
	for i, l := range layers {
		if !l.Empty {
			f.names[l.Blob.Digest] = prev
			prev = names[i]
		}
	}
	dst.Blobs = f
	cs := &CacheStore{Records: dst.Records, Snapshotter: dst.Snapshotter, Worker: dst}
	ref := dst.lazyChain(ctx, "test image", layers, nil)
	if got, ok := ref.Layers(); !ok || len(got) != 4 {
		t.Fatalf("fresh chain is not lazy: %v", ok)
	}
	key := digest.FromString("key")
	if err := cs.Save(ctx, key, ref); err != nil {
		t.Fatal(err)
	}
	if rec, _ := dst.Records.Result(key); rec != nil {
		t.Fatal("a lazy result was recorded before its snapshot existed")
	}
	if err := ref.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ref.Layers(); ok {
		t.Error("a ready ref still says it is lazy")
	}
	if rec, _ := dst.Records.Result(key); rec == nil || rec.Snapshot != names[3] {
		t.Errorf("record after Ready = %+v, want %s", rec, names[3])
	}
	wantTree(t, mergedTree(t, dst, ref.Snapshot), map[string]string{"a": "1", "b": "2", "c": "3"})
	// The same chain again is its snapshot, not lazy.
	if again := dst.lazyChain(ctx, "test image", layers, nil); again.lazy != nil || again.Snapshot != names[3] {
		t.Errorf("second lazyChain = %+v", again)
	}
}
