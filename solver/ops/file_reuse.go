package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
	"github.com/strata-build/strata/solver/ops/fileop"
)

// A copy's reuse record remembers, for one copy over one parent snapshot,
// the snapshot the copy last made and the entry digests of what it read.
// The next run of the same copy over the same parent links the files whose
// digests did not change from that snapshot instead of writing them again
// (see fileop.Reuse). The record is kept under the parent's name, so it
// goes when a prune removes the parent.
type reuseRecord struct {
	Snapshot string
	Files    map[string]digest.Digest
}

// keepSum remembers what the copies from input i read, for Exec.
func (o *fileOp) keepSum(i int, sum solver.ContentSum) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sums == nil {
		o.sums = map[int]solver.ContentSum{}
	}
	o.sums[i] = sum
}

// reusable returns the one copy action of the op and what it read, when the
// op is exactly one copy whose source was content-keyed; ok is false
// otherwise.
func (o *fileOp) reusable(parent string) (files map[string]digest.Digest, ok bool) {
	if parent == "" || len(o.op.Actions) != 1 || o.op.Actions[0].Copy == nil {
		return nil, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	sum, ok := o.sums[o.op.Actions[0].Copy.Source]
	return sum.Files, ok && sum.Files != nil
}

// reuseKey names the reuse record of this copy over parent ("copy-reuse.v2":
// the Files of v1 records were keyed by destination path).
func (o *fileOp) reuseKey(parent string) string {
	return parent + "\x00copy-reuse.v2\x00" + opDigest("file", o.op).Encoded()
}

// reuse finds the earlier result of this copy over parent and returns how
// the copy into the active snapshot with mounts may reuse its files (nil
// when there is nothing to reuse) and a release func, which keeps the
// earlier snapshot from being removed until it is called.
func (o *fileOp) reuse(ctx context.Context, parent string, mounts []mount.Mount) (*fileop.Reuse, func(), error) {
	none := func() {}
	files, ok := o.reusable(parent)
	upper, isOverlay := snapshot.OverlayDir(mounts)
	if !ok || !isOverlay {
		return nil, none, nil
	}
	b, err := o.w.Records.Sum(o.reuseKey(parent))
	if err != nil || b == nil {
		return nil, none, err
	}
	var rec reuseRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, none, nil // an unreadable record only costs the reuse
	}
	info, err := o.w.Snapshotter.Stat(ctx, rec.Snapshot)
	if errors.Is(err, errdefs.ErrNotFound) || (err == nil && (info.Kind != snapshot.KindCommitted || info.Parent != parent)) {
		return nil, none, nil
	}
	if err != nil {
		return nil, none, fmt.Errorf("stat snapshot %s: %w", rec.Snapshot, err)
	}
	key := randomID("reuse-")
	view, err := o.w.Snapshotter.View(ctx, key, rec.Snapshot)
	if err != nil {
		return nil, none, fmt.Errorf("view snapshot %s: %w", rec.Snapshot, err)
	}
	release := func() { _ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), key) }
	prev, ok := snapshot.OverlayDir(view)
	if !ok {
		release()
		return nil, none, nil
	}
	return &fileop.Reuse{Upper: upper, Prev: prev, Files: files, PrevFiles: rec.Files}, release, nil
}

// saveReuse records that this copy over parent made snapshot.
func (o *fileOp) saveReuse(parent, snapshot string) error {
	files, ok := o.reusable(parent)
	if !ok {
		return nil
	}
	b, err := json.Marshal(reuseRecord{Snapshot: snapshot, Files: files})
	if err != nil {
		return fmt.Errorf("encode reuse record: %w", err)
	}
	if err := o.w.Records.SaveSum(o.reuseKey(parent), b); err != nil {
		return fmt.Errorf("save reuse record of snapshot %s: %w", snapshot, err)
	}
	return nil
}
