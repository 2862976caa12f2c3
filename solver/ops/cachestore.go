package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/solver"
)

// CacheStore is the solver's view of the store's result records, and of
// the records of imported caches.
type CacheStore struct {
	Records     *cache.Records
	Snapshotter snapshot.Snapshotter
	// Remote, if set, is asked on a local miss: a hit there is a lazy
	// result whose layers Worker fetches (Worker.Blobs) and unpacks into
	// snapshots named by chain ID, shared with images, when a step reads
	// it; it is then a local record.
	Remote RemoteCache
	Worker *Worker

	mu      sync.Mutex
	touched []digest.Digest // hits to mark used, written once by Flush
	used    []UsedResult
	links   map[digest.Digest]digest.Digest // links used or made, link -> key
}

// RemoteCache is the records of imported caches.
type RemoteCache interface {
	// Lookup returns the layers of key's result, base first.
	Lookup(key digest.Digest) ([]cache.Layer, bool)
	// LookupLink returns the key a link key stood for.
	LookupLink(link digest.Digest) (digest.Digest, bool)
}

// LookupLink returns the key link stood for, from the store's records or
// the imported caches (solver.Linker).
func (c *CacheStore) LookupLink(ctx context.Context, link digest.Digest) (digest.Digest, bool, error) {
	k, ok, err := c.Records.Link(link)
	if err != nil {
		return "", false, err
	}
	if !ok && c.Remote != nil {
		k, ok = c.Remote.LookupLink(link)
	}
	if ok {
		c.noteLink(link, k)
	}
	return k, ok, nil
}

// SaveLink records that link stands for key (solver.Linker).
func (c *CacheStore) SaveLink(ctx context.Context, link, key digest.Digest) error {
	c.noteLink(link, key)
	return c.Records.SaveLink(link, key)
}

func (c *CacheStore) noteLink(link, key digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.links == nil {
		c.links = map[digest.Digest]digest.Digest{}
	}
	c.links[link] = key
}

// UsedLinks are the links this store looked up or saved, link -> key.
func (c *CacheStore) UsedLinks() map[digest.Digest]digest.Digest {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[digest.Digest]digest.Digest, len(c.links))
	for l, k := range c.links {
		out[l] = k
	}
	return out
}

// UsedResult is a result a solve used: from the cache or just made.
type UsedResult struct {
	Key  digest.Digest
	Step string
	Ref  *Ref
}

// Used records r as used under key (solver.UseRecorder); host
// directories are not results a cache can carry.
func (c *CacheStore) Used(key digest.Digest, stepID string, r solver.Result) {
	ref := refOf(r)
	if ref.Dir != "" {
		return
	}
	c.mu.Lock()
	c.used = append(c.used, UsedResult{Key: key, Step: stepID, Ref: ref})
	c.mu.Unlock()
}

// UsedResults lists the results used since the store was made.
func (c *CacheStore) UsedResults() []UsedResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]UsedResult(nil), c.used...)
}

// Lookup returns the committed snapshot a key points at; a record whose
// snapshot is gone is a miss. A local miss asks Remote.
func (c *CacheStore) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	rec, err := c.Records.Result(key)
	if err != nil {
		return nil, false, err
	}
	if rec == nil {
		return c.lookupRemote(ctx, key)
	}
	if rec.Snapshot != "" {
		if _, err := c.Snapshotter.Stat(ctx, rec.Snapshot); err != nil {
			return c.lookupRemote(ctx, key)
		}
	}
	c.mu.Lock()
	c.touched = append(c.touched, key)
	c.mu.Unlock()
	return &Ref{Snapshot: rec.Snapshot}, true, nil
}

// lookupRemote answers key from an imported cache with a lazy ref: its
// layers are fetched (if the content store lacks them) and unpacked when a
// step first reads the result, and the result is then a local record. A
// result only exported is never fetched or unpacked.
func (c *CacheStore) lookupRemote(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	if c.Remote == nil {
		return nil, false, nil
	}
	layers, ok := c.Remote.Lookup(key)
	if !ok {
		return nil, false, nil
	}
	c.mu.Lock()
	c.touched = append(c.touched, key)
	c.mu.Unlock()
	save := func(top string) error { return c.Records.SaveResult(key, top) }
	ref := c.Worker.lazyChain(ctx, "cached result "+key.Encoded()[:12], layers, save)
	if ref.lazy == nil && ref.Snapshot != "" {
		// Unpacked already (an image, or another key of the same result).
		return ref, true, save(ref.Snapshot)
	}
	return ref, true, nil
}

// ChainNames are the snapshot names of a chain of layers, base first: one
// per layer, named by its chain ID, so that images and caches that share
// layers share snapshots.
func ChainNames(layers []cache.Layer) []string {
	names := make([]string, len(layers))
	var chain digest.Digest
	for i, l := range layers {
		chain = ChainID(chain, l.DiffID)
		names[i] = "layer-" + chain.Encoded()
	}
	return names
}

// Flush records the hits since the last Flush as used now, in one
// transaction rather than one per hit.
func (c *CacheStore) Flush() error {
	c.mu.Lock()
	keys := c.touched
	c.touched = nil
	c.mu.Unlock()
	return c.Records.TouchResults(keys)
}

// Save records a result; host directories are never recorded, and a lazy
// result is recorded when (if ever) its snapshot is made.
func (c *CacheStore) Save(ctx context.Context, key digest.Digest, r solver.Result) error {
	ref := refOf(r)
	if ref.Dir != "" {
		return nil
	}
	return ref.whenReady(func() error { return c.Records.SaveResult(key, ref.Snapshot) })
}

// LoadStep returns the last record of a step.
func (c *CacheStore) LoadStep(ctx context.Context, stepID string) (*solver.StepRecord, error) {
	b, err := c.Records.Step(stepID)
	if err != nil || b == nil {
		return nil, err
	}
	var rec solver.StepRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode step record %s: %w", stepID, err)
	}
	return &rec, nil
}

// SaveStep stores the record of a step.
func (c *CacheStore) SaveStep(ctx context.Context, stepID string, rec *solver.StepRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return c.Records.SaveStep(stepID, b)
}
