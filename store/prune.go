package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/lockfile"
)

// The store lock: every open Store holds it shared for its lifetime; Prune
// takes it exclusively, so it waits for running builds and never removes
// what one of them uses.
func (s *Store) lockShared(ctx context.Context) error {
	f, err := os.OpenFile(filepath.Join(s.root, "store.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := lockfile.Shared(ctx, f); err != nil {
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

	chain []string // Snapshot and its parents, base first; nil if it is gone
}

// DiskUsage lists every cache record with its size, most recently used first.
func (s *Store) DiskUsage(ctx context.Context) ([]DiskUsage, error) {
	out, _, err := s.usage(ctx)
	return out, err
}

// FlatUsage is what the flattened lower copies of chains deeper than an
// overlay stacks (500 layers) hold: how many, and their size on disk. They
// are counted apart from DiskUsage's records, which they serve.
func (s *Store) FlatUsage(ctx context.Context) (n int, size int64, err error) {
	var names []string
	err = s.snapshotter.Walk(ctx, func(i snapshot.Info) error {
		if i.Kind == snapshot.KindCommitted && strings.HasPrefix(i.Name, snapshot.FlatPrefix) {
			names = append(names, i.Name)
		}
		return nil
	})
	if err != nil || len(names) == 0 {
		return 0, 0, err
	}
	us, err := s.snapshotter.UsageOf(ctx, names)
	if err != nil {
		return 0, 0, err
	}
	for _, u := range us {
		size += u.Size
	}
	return len(names), size, nil
}

// usage lists the records with their chains, and the size of every
// snapshot in those chains. A file that several snapshots share (a COPY
// links the files it did not change from its previous result) is counted
// once, in the oldest snapshot that holds it, so the sizes add up to what
// the store holds on disk.
func (s *Store) usage(ctx context.Context) ([]DiskUsage, map[string]int64, error) {
	var out []DiskUsage
	err := s.records.WalkResults(func(key digest.Digest, rec cache.ResultRecord) error {
		out = append(out, DiskUsage{Key: key, Snapshot: rec.Snapshot, LastUsed: rec.LastUsed})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	created := map[string]time.Time{}
	err = s.snapshotter.Walk(ctx, func(i snapshot.Info) error {
		created[i.Name] = i.Created
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	parents := map[string]int{}
	var names []string
	inChains := map[string]bool{}
	for i := range out {
		chain, err := s.layers().Chain(ctx, out[i].Snapshot)
		if err != nil {
			continue // the snapshot is gone: the record holds nothing
		}
		out[i].chain = chain
		for _, n := range chain {
			if !inChains[n] {
				inChains[n] = true
				names = append(names, n)
			}
		}
		if len(chain) > 0 {
			for _, p := range chain[:len(chain)-1] {
				parents[p]++
			}
		}
	}
	sort.SliceStable(names, func(i, j int) bool { return created[names[i]].Before(created[names[j]]) })
	usages, err := s.snapshotter.UsageOf(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	sizes := make(map[string]int64, len(names))
	for i, n := range names {
		sizes[n] = usages[i].Size
	}
	for i := range out {
		if out[i].chain != nil {
			out[i].Size = sizes[out[i].Snapshot]
		}
		out[i].Shared = parents[out[i].Snapshot] > 0
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, sizes, nil
}

// Prune removes cache records as opts says, then every snapshot and blob
// that neither a remaining record nor a tagged image references. It waits
// for the other processes that have the store open to close it.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	// A blocking flock, not a polling one: the kernel wakes the waiter as
	// soon as the last build lets go (a Ctrl-C while waiting ends the
	// process, not the wait).
	fd := int(s.storeLock.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return rep, fmt.Errorf("lock store for prune: %w", err)
	}
	defer unix.Flock(fd, unix.LOCK_SH)

	usage, sizes, err := s.usage(ctx)
	if err != nil {
		return rep, err
	}
	drop := pruneSelect(usage, sizes, opts, time.Now())
	dropped := map[digest.Digest]bool{}
	for _, u := range drop {
		if err := s.records.DeleteResult(u.Key); err != nil {
			return rep, err
		}
		dropped[u.Key] = true
		rep.Records++
	}
	keepSnaps := map[string]bool{}
	for _, u := range usage {
		if !dropped[u.Key] {
			for _, n := range u.chain {
				keepSnaps[n] = true
			}
		}
	}
	if err := s.records.DeleteLinksExcept(func(k digest.Digest) bool { return !dropped[k] }); err != nil {
		return rep, err
	}
	if err := s.removeSnapshots(ctx, keepSnaps, &rep); err != nil {
		return rep, err
	}
	return rep, s.removeBlobs(ctx, keepSnaps, &rep)
}

// pruneSelect picks the records opts removes, least recently used first:
// records whose snapshot is gone, then those older than the age limit, then
// the least recently used until what the rest hold (their snapshot chains,
// each snapshot counted once) fits in KeepStorage.
func pruneSelect(usage []DiskUsage, sizes map[string]int64, opts PruneOptions, now time.Time) []DiskUsage {
	sorted := append([]DiskUsage(nil), usage...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].LastUsed.Before(sorted[j].LastUsed) })
	if opts.All {
		return sorted
	}
	age := opts.Until
	if age <= 0 && opts.KeepStorage <= 0 {
		age = PruneDefaultAge
	}
	var drop, kept []DiskUsage
	for _, u := range sorted {
		gone := u.chain == nil && u.Snapshot != ""
		if gone || (age > 0 && now.Sub(u.LastUsed) > age) {
			drop = append(drop, u)
		} else {
			kept = append(kept, u)
		}
	}
	if opts.KeepStorage <= 0 {
		return drop
	}
	for len(kept) > 0 && heldBy(kept, sizes) > opts.KeepStorage {
		drop, kept = append(drop, kept[0]), kept[1:]
	}
	return drop
}

// heldBy is the disk space the snapshot chains of records take.
func heldBy(records []DiskUsage, sizes map[string]int64) int64 {
	seen := map[string]bool{}
	var total int64
	for _, u := range records {
		for _, n := range u.chain {
			if !seen[n] {
				seen[n] = true
				total += sizes[n]
			}
		}
	}
	return total
}

// removeSnapshots removes committed snapshots outside keep, children first.
func (s *Store) removeSnapshots(ctx context.Context, keep map[string]bool, rep *PruneReport) error {
	for {
		var victims []snapshot.Info
		hasChild := map[string]bool{}
		err := s.snapshotter.Walk(ctx, func(i snapshot.Info) error {
			if i.Parent != "" {
				hasChild[i.Parent] = true
			}
			flatOf, flat := strings.CutPrefix(i.Name, snapshot.FlatPrefix)
			if i.Kind == snapshot.KindCommitted && !keep[i.Name] && !(flat && keep[flatOf]) {
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
			if u, err := s.snapshotter.Usage(ctx, v.Name); err == nil {
				rep.Reclaimed += u.Size
			}
			if err := s.snapshotter.Remove(ctx, v.Name); err != nil {
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

// removeBlobs deletes the layer records of removed snapshots, then the
// blobs that no tagged image and no kept snapshot's layer record references.
func (s *Store) removeBlobs(ctx context.Context, keepSnaps map[string]bool, rep *PruneReport) error {
	keep := map[digest.Digest]bool{}
	imgs, err := s.images.List(ctx)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		if err := markImage(ctx, s.content, img.Target, keep); err != nil {
			return fmt.Errorf("image %s: %w", images.Familiar(img.Name), err)
		}
	}
	var stale []string
	err = s.records.WalkLayers(func(name string, l cache.Layer) error {
		snap, _, _ := strings.Cut(name, "@") // "<snapshot>@<epoch>" too
		switch {
		case !keepSnaps[snap]:
			stale = append(stale, name)
		case !l.Empty:
			keep[l.Blob.Digest] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range stale {
		if err := s.records.DeleteLayer(name); err != nil {
			return err
		}
	}
	if err := s.records.DeleteSumsExcept(func(snap string) bool { return keepSnaps[snap] }); err != nil {
		return err
	}
	var victims []content.Info
	err = s.content.Walk(ctx, func(i content.Info) error {
		if !keep[i.Digest] {
			victims = append(victims, i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, v := range victims {
		if err := s.content.Delete(ctx, v.Digest); err != nil {
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
