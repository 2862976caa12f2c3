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

// CacheStore is the solver's view of the store's result records.
type CacheStore struct {
	Records     *cache.Records
	Snapshotter snapshot.Snapshotter

	mu      sync.Mutex
	touched []digest.Digest // hits to mark used, written once by Flush
}

// Lookup returns the committed snapshot a key points at; a record whose
// snapshot is gone is a miss.
func (c *CacheStore) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	rec, err := c.Records.Result(key)
	if err != nil || rec == nil {
		return nil, false, err
	}
	if rec.Snapshot != "" {
		if _, err := c.Snapshotter.Stat(ctx, rec.Snapshot); err != nil {
			return nil, false, nil
		}
	}
	c.mu.Lock()
	c.touched = append(c.touched, key)
	c.mu.Unlock()
	return &Ref{Snapshot: rec.Snapshot}, true, nil
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
