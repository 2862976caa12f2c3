package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/solver"
)

// CacheStore is the solver's view of the store's result records, and of
// the records of imported caches.
type CacheStore struct {
	Records     *cache.Records
	Snapshotter snapshot.Snapshotter
	// Remote, if set, is asked on a local miss: a hit there fetches the
	// result's layers into the content store and unpacks them with Worker
	// (snapshots named by chain ID, shared with images), and is then a
	// local record.
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
	// Fetch stores the layers of key's result that cs lacks.
	Fetch(ctx context.Context, cs *content.Store, key digest.Digest) error
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
	Key      digest.Digest
	Step     string
	Snapshot string
}

// Used records r as used under key (solver.UseRecorder); host
// directories are not results a cache can carry.
func (c *CacheStore) Used(key digest.Digest, stepID string, r solver.Result) {
	ref := refOf(r)
	if ref.Dir != "" {
		return
	}
	c.mu.Lock()
	c.used = append(c.used, UsedResult{Key: key, Step: stepID, Snapshot: ref.Snapshot})
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

// lookupRemote makes key's result from an imported cache: its layers are
// fetched if the content store lacks them, unpacked, and recorded locally.
func (c *CacheStore) lookupRemote(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	if c.Remote == nil {
		return nil, false, nil
	}
	layers, ok := c.Remote.Lookup(key)
	if !ok {
		return nil, false, nil
	}
	if err := c.Remote.Fetch(ctx, c.Worker.Content, key); err != nil {
		return nil, false, err
	}
	parent := ""
	var chain digest.Digest
	for i, l := range layers {
		chain = ChainID(chain, l.DiffID)
		name := "layer-" + chain.Encoded()
		if err := c.Worker.unpackLayer(ctx, name, parent, l); err != nil {
			return nil, false, fmt.Errorf("unpack cached layer %d of %d (%s): %w", i+1, len(layers), l.Blob.Digest, err)
		}
		parent = name
	}
	if err := c.Records.SaveResult(key, parent); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	c.touched = append(c.touched, key)
	c.mu.Unlock()
	return &Ref{Snapshot: parent}, true, nil
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

// Save records a result; host directories are never recorded.
func (c *CacheStore) Save(ctx context.Context, key digest.Digest, r solver.Result) error {
	ref := refOf(r)
	if ref.Dir != "" {
		return nil
	}
	return c.Records.SaveResult(key, ref.Snapshot)
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
