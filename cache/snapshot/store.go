package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/lockfile"
	"github.com/strata-build/strata/mount"
)

// bucket is the metadata bucket of snapshot records, keyed by key or name.
var bucket = []byte("snapshots")

// record is what the metadata DB keeps of one snapshot.
type record struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"`
	Created time.Time `json:"created"`
}

// driver is what differs between the overlay and the naive snapshotter.
type driver interface {
	name() string
	// create fills a new snapshot directory; chain holds the fs dirs of the
	// parent chain, nearest first.
	create(dir string, k Kind, chain []string) error
	// mounts describes how to mount a snapshot of kind k.
	mounts(dir string, k Kind, chain []string) []mount.Mount
}

// snapshotter implements Snapshotter over a driver.
type snapshotter struct {
	root string
	db   *metadata.DB
	drv  driver

	mu    sync.Mutex
	locks map[string]*os.File // id -> held lock of an active snapshot of this process
}

func newSnapshotter(root string, db *metadata.DB, drv driver) (*snapshotter, error) {
	for _, d := range []string{"snapshots", "locks"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create snapshotter root %s: %w", root, err)
		}
	}
	if err := claimRoot(root, drv.name()); err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("create snapshot bucket: %w", err)
	}
	return &snapshotter{root: root, db: db, drv: drv, locks: map[string]*os.File{}}, nil
}

// claimRoot records which driver owns root and refuses a root made by the
// other one: their directories are not interchangeable.
func claimRoot(root, name string) error {
	p := filepath.Join(root, "driver")
	b, err := os.ReadFile(p)
	if err == nil {
		if got := strings.TrimSpace(string(b)); got != name {
			return fmt.Errorf("snapshot root %s belongs to the %s snapshotter, not %s", root, got, name)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read snapshot driver of %s: %w", root, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return claimRoot(root, name) // another process claimed it first
	}
	if err != nil {
		return fmt.Errorf("claim snapshot root %s: %w", root, err)
	}
	_, err = f.WriteString(name + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("claim snapshot root %s: %w", root, err)
	}
	return nil
}

func (s *snapshotter) dir(id string) string      { return filepath.Join(s.root, "snapshots", id) }
func (s *snapshotter) lockPath(id string) string { return filepath.Join(s.root, "locks", id+".lock") }
func fsDir(dir string) string                    { return filepath.Join(dir, "fs") }

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

func getRecord(b *bolt.Bucket, key string) (record, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return record{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("decode snapshot record %q: %w", key, err)
	}
	return r, nil
}

func putRecord(b *bolt.Bucket, key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

// chain is a parent chain, nearest first: the snapshots' ids and names.
type chain struct{ ids, names []string }

// chainOf returns the chain of parent and its ancestors.
func chainOf(b *bolt.Bucket, parent string) (chain, error) {
	var c chain
	for p := parent; p != ""; {
		r, err := getRecord(b, p)
		if err != nil {
			return chain{}, fmt.Errorf("parent chain: %w", err)
		}
		if r.Kind != KindCommitted {
			return chain{}, fmt.Errorf("parent %q is %s, not committed", p, r.Kind)
		}
		c.ids = append(c.ids, r.ID)
		c.names = append(c.names, p)
		p = r.Parent
	}
	return c, nil
}

func (s *snapshotter) chainDirs(ids []string) []string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = fsDir(s.dir(id))
	}
	return dirs
}

func (s *snapshotter) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, KindActive, key, parent)
}

func (s *snapshotter) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, KindView, key, parent)
}

// create makes an active snapshot or view: lock first, then the record,
// then the directories, so that Sweep never sees an unlocked young one.
func (s *snapshotter) create(ctx context.Context, k Kind, key, parent string) ([]mount.Mount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("prepare snapshot: empty key")
	}
	// The lock file appears already locked: Sweep never takes it.
	id := newID()
	lk, err := lockfile.Create(s.lockPath(id))
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot %q: %w", key, err)
	}
	var ids chain
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if ids, err = chainOf(b, parent); err != nil {
			return err
		}
		return putRecord(b, key, record{ID: id, Kind: k, Parent: parent, Created: time.Now().UTC()})
	})
	if err != nil {
		unlockFile(lk)
		return nil, fmt.Errorf("prepare snapshot %q: %w", key, err)
	}
	s.mu.Lock()
	s.locks[id] = lk
	s.mu.Unlock()
	dir := s.dir(id)
	chain, err := s.lowerDirs(ctx, ids)
	if err == nil {
		err = s.drv.create(dir, k, chain)
	}
	if err != nil {
		_ = s.Remove(ctx, key)
		return nil, fmt.Errorf("prepare snapshot %q: %w", key, err)
	}
	return s.drv.mounts(dir, k, chain), nil
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	var r record
	var ids chain
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var err error
		if r, err = getRecord(b, key); err != nil {
			return err
		}
		if r.Kind == KindCommitted {
			return fmt.Errorf("snapshot %q is committed: view it to mount it", key)
		}
		ids, err = chainOf(b, r.Parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts of snapshot: %w", err)
	}
	chain, err := s.lowerDirs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("mounts of snapshot %q: %w", key, err)
	}
	return s.drv.mounts(s.dir(r.ID), r.Kind, chain), nil
}

func (s *snapshotter) Commit(ctx context.Context, name, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("commit snapshot %q: empty name", key)
	}
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		r, err := getRecord(b, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return fmt.Errorf("snapshot %q is %s, not active", key, r.Kind)
		}
		if b.Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		id, r.Kind = r.ID, KindCommitted
		return putRecord(b, name, r)
	})
	if err != nil {
		return fmt.Errorf("commit snapshot %q as %q: %w", key, name, err)
	}
	s.release(id)
	return nil
}

// release drops this process's lock of snapshot id and its lock file.
func (s *snapshotter) release(id string) {
	s.mu.Lock()
	lk := s.locks[id]
	delete(s.locks, id)
	s.mu.Unlock()
	if lk != nil {
		unlockFile(lk)
		return
	}
	_ = os.Remove(s.lockPath(id))
}

func (s *snapshotter) Remove(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		r, err := getRecord(b, key)
		if err != nil {
			return err
		}
		if r.Kind == KindCommitted {
			if child := childOf(b, key); child != "" {
				return fmt.Errorf("snapshot %q is the parent of %q: %w", key, child, ErrHasChildren)
			}
		}
		id = r.ID
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if err := os.RemoveAll(s.dir(id)); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	s.release(id)
	return nil
}

// childOf returns the name of one snapshot whose parent is name, or "".
func childOf(b *bolt.Bucket, name string) string {
	var child string
	_ = b.ForEach(func(k, v []byte) error {
		var r record
		if json.Unmarshal(v, &r) == nil && r.Parent == name {
			child = string(k)
			return errStop
		}
		return nil
	})
	return child
}

var errStop = errors.New("stop")

// record reads the record of key.
func (s *snapshotter) record(key string) (record, error) {
	var r record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx.Bucket(bucket), key)
		return err
	})
	return r, err
}

func (s *snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	r, err := s.record(key)
	if err != nil {
		return Info{}, fmt.Errorf("stat snapshot: %w", err)
	}
	return Info{Name: key, Parent: r.Parent, Kind: r.Kind, Created: r.Created}, nil
}

func (s *snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	r, err := s.record(key)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of snapshot: %w", err)
	}
	u, err := diskUsage(ctx, fsDir(s.dir(r.ID)), map[fileID]bool{})
	if err != nil {
		return Usage{}, fmt.Errorf("usage of snapshot %q: %w", key, err)
	}
	return u, nil
}

func (s *snapshotter) UsageOf(ctx context.Context, keys []string) ([]Usage, error) {
	out := make([]Usage, len(keys))
	seen := map[fileID]bool{}
	for i, key := range keys {
		r, err := s.record(key)
		if err != nil {
			return nil, fmt.Errorf("usage of snapshot: %w", err)
		}
		if out[i], err = diskUsage(ctx, fsDir(s.dir(r.ID)), seen); err != nil {
			return nil, fmt.Errorf("usage of snapshot %q: %w", key, err)
		}
	}
	return out, nil
}

// records reads every record, by key.
func (s *snapshotter) records() (map[string]record, []string, error) {
	recs := map[string]record{}
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode snapshot record %q: %w", k, err)
			}
			recs[string(k)] = r
			keys = append(keys, string(k))
			return nil
		})
	})
	return recs, keys, err
}

func (s *snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	recs, keys, err := s.records()
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := recs[k]
		if err := fn(Info{Name: k, Parent: r.Parent, Kind: r.Kind, Created: r.Created}); err != nil {
			return err
		}
	}
	return nil
}
