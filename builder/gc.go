package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/snapshot"
)

// The store lock: every open Store holds it shared for its lifetime; Prune
// takes it exclusively, so it waits for running builds and never removes
// what one of them uses.
func (s *Store) lockShared() error {
	f, err := os.OpenFile(filepath.Join(s.Root, "store.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("lock store: %w", err)
	}
	s.storeLock = f
	return nil
}

// PruneOptions selects what Prune removes. With none set it removes cache
// records unused for PruneDefaultAge and everything unreferenced.
type PruneOptions struct {
	// All removes every cache record.
	All bool
	// KeepStorage, if > 0, removes least recently used records until the
	// cache takes at most this many bytes.
	KeepStorage int64
	// Until, if > 0, removes records unused for longer.
	Until time.Duration
}

// PruneDefaultAge is how old an unused record must be for a plain prune.
const PruneDefaultAge = 48 * time.Hour

// PruneReport says what Prune removed.
type PruneReport struct {
	Records   int
	Snapshots int
	Blobs     int
	Reclaimed int64
}

// DiskUsage is one cache record's footprint.
type DiskUsage struct {
	Key      digest.Digest
	Snapshot string
	Size     int64 // the snapshot's own directory
	Shared   bool  // another record's snapshot builds on it
	LastUsed time.Time
}

// DiskUsage lists every cache record with its size.
func (s *Store) DiskUsage(ctx context.Context) ([]DiskUsage, error) {
	var out []DiskUsage
	parents := map[string]int{}
	err := s.Records.WalkResults(func(key digest.Digest, rec cache.ResultRecord) error {
		out = append(out, DiskUsage{Key: key, Snapshot: rec.Snapshot, LastUsed: rec.LastUsed})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		name := out[i].Snapshot
		if name == "" {
			continue
		}
		if u, err := s.Snapshotter.Usage(ctx, name); err == nil {
			out[i].Size = u.Size
		}
		chain, err := s.chain(ctx, name)
		if err != nil {
			continue
		}
		for _, p := range chain[:len(chain)-1] {
			parents[p]++
		}
	}
	for i := range out {
		out[i].Shared = parents[out[i].Snapshot] > 0
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// Prune removes cache records as opts says, then every snapshot and blob
// that neither a remaining record nor a tagged image references.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	fd := int(s.storeLock.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return rep, fmt.Errorf("lock store for prune: %w", err)
	}
	defer unix.Flock(fd, unix.LOCK_SH)

	usage, err := s.DiskUsage(ctx)
	if err != nil {
		return rep, err
	}
	drop := pruneSelect(usage, opts, time.Now())
	for _, u := range drop {
		if err := s.Records.DeleteResult(u.Key); err != nil {
			return rep, err
		}
		rep.Records++
	}
	keepSnaps := map[string]bool{}
	err = s.Records.WalkResults(func(_ digest.Digest, rec cache.ResultRecord) error {
		chain, err := s.chain(ctx, rec.Snapshot)
		if err != nil {
			return nil // a record whose snapshot is gone holds nothing
		}
		for _, n := range chain {
			keepSnaps[n] = true
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if err := s.removeSnapshots(ctx, keepSnaps, &rep); err != nil {
		return rep, err
	}
	return rep, s.removeBlobs(ctx, keepSnaps, &rep)
}

// pruneSelect picks the records opts removes, least recently used first.
func pruneSelect(usage []DiskUsage, opts PruneOptions, now time.Time) []DiskUsage {
	sorted := append([]DiskUsage(nil), usage...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].LastUsed.Before(sorted[j].LastUsed) })
	if opts.All {
		return sorted
	}
	age := opts.Until
	if age <= 0 && opts.KeepStorage <= 0 {
		age = PruneDefaultAge
	}
	var total int64
	for _, u := range sorted {
		total += u.Size
	}
	var drop []DiskUsage
	for _, u := range sorted {
		old := age > 0 && now.Sub(u.LastUsed) > age
		over := opts.KeepStorage > 0 && total > opts.KeepStorage
		if old || over {
			drop = append(drop, u)
			total -= u.Size
		}
	}
	return drop
}

// removeSnapshots removes committed snapshots outside keep, children first.
func (s *Store) removeSnapshots(ctx context.Context, keep map[string]bool, rep *PruneReport) error {
	for {
		var victims []snapshot.Info
		hasChild := map[string]bool{}
		err := s.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
			if i.Parent != "" {
				hasChild[i.Parent] = true
			}
			if i.Kind == snapshot.KindCommitted && !keep[i.Name] {
				victims = append(victims, i)
			}
			return nil
		})
		if err != nil {
			return err
		}
		removed := 0
		for _, v := range victims {
			if hasChild[v.Name] {
				continue
			}
			if u, err := s.Snapshotter.Usage(ctx, v.Name); err == nil {
				rep.Reclaimed += u.Size
			}
			if err := s.Snapshotter.Remove(ctx, v.Name); err != nil {
				if errors.Is(err, snapshot.ErrHasChildren) {
					continue
				}
				return fmt.Errorf("remove snapshot %s: %w", v.Name, err)
			}
			removed++
			rep.Snapshots++
		}
		if removed == 0 {
			return nil
		}
	}
}

// removeBlobs deletes blobs no tagged image and no kept snapshot's layer
// record references.
func (s *Store) removeBlobs(ctx context.Context, keepSnaps map[string]bool, rep *PruneReport) error {
	keep := map[digest.Digest]bool{}
	imgs, err := s.Images.List(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if err := markImage(ctx, s.Content, img.Target, keep); err != nil {
			return fmt.Errorf("image %s: %w", images.Familiar(img.Name), err)
		}
	}
	for name := range keepSnaps {
		l, err := s.Records.Layer(name)
		if err != nil {
			return err
		}
		if l != nil && !l.Empty {
			keep[l.Blob.Digest] = true
		}
	}
	var victims []content.Info
	err = s.Content.Walk(ctx, func(i content.Info) error {
		if !keep[i.Digest] {
			victims = append(victims, i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, v := range victims {
		if err := s.Content.Delete(ctx, v.Digest); err != nil {
			return err
		}
		rep.Blobs++
		rep.Reclaimed += v.Size
	}
	return nil
}

// markImage marks an index or manifest and everything it references.
func markImage(ctx context.Context, cs *content.Store, desc ocispec.Descriptor, keep map[digest.Digest]bool) error {
	keep[desc.Digest] = true
	b, err := cs.ReadBlob(ctx, desc.Digest)
	if err != nil {
		return err
	}
	var m struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    ocispec.Descriptor   `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for _, c := range m.Manifests {
		if _, err := cs.Info(ctx, c.Digest); err != nil {
			continue // an index may name platforms that were never fetched
		}
		if err := markImage(ctx, cs, c, keep); err != nil {
			return err
		}
	}
	if m.Config.Digest != "" {
		keep[m.Config.Digest] = true
	}
	for _, l := range m.Layers {
		keep[l.Digest] = true
	}
	return nil
}
