package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/strata-build/strata/internal/lockfile"
)

// unlockFile removes the lock file while still holding it, then releases
// it.
func unlockFile(f *os.File) {
	_ = os.Remove(f.Name())
	_ = f.Close()
}

func (s *snapshotter) Sweep(ctx context.Context) error {
	recs, _, err := s.records()
	if err != nil {
		return fmt.Errorf("sweep snapshots: %w", err)
	}
	committed := map[string]bool{}
	ids := map[string]bool{}
	for _, r := range recs {
		if r.Kind == KindCommitted {
			committed[r.ID] = true
		} else {
			ids[r.ID] = true
		}
	}
	if err := s.listIDs(ids); err != nil {
		return fmt.Errorf("sweep snapshots: %w", err)
	}
	var errs []error
	for id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if committed[id] {
			_ = os.Remove(s.lockPath(id)) // left by a commit that crashed before unlinking it
			continue
		}
		s.mu.Lock()
		_, ours := s.locks[id]
		s.mu.Unlock()
		if ours {
			continue
		}
		if err := s.sweepOne(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// listIDs adds the ids of every snapshot directory and lock file to ids.
func (s *snapshotter) listIDs(ids map[string]bool) error {
	des, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return err
	}
	for _, de := range des {
		ids[de.Name()] = true
	}
	des, err = os.ReadDir(filepath.Join(s.root, "locks"))
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), lockfile.NewPrefix) {
			sweepNewLock(filepath.Join(s.root, "locks", de.Name()))
		} else if id, ok := strings.CutSuffix(de.Name(), ".lock"); ok {
			ids[id] = true
		}
	}
	return nil
}

// sweepNewLock removes a lock file that a process killed while making it
// left under its temporary name (see lockfile.NewPrefix).
func sweepNewLock(p string) {
	if f, dead, _ := lockfile.LockIfDead(p); f != nil && dead {
		unlockFile(f)
	}
}

// sweepOne removes snapshot id if no live process holds its lock and it is
// not committed. The record goes first, then the directory, then the lock.
func (s *snapshotter) sweepOne(id string) error {
	lk, dead, err := lockfile.LockIfDead(s.lockPath(id))
	if err != nil {
		return fmt.Errorf("sweep snapshot %s: %w", id, err)
	}
	if !dead {
		return nil // its process is alive
	}
	keep := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			r, err := getRecord(b, string(k))
			if err != nil || r.ID != id {
				return err
			}
			if r.Kind == KindCommitted {
				keep = true // committed since we listed it
				return nil
			}
			dead = append(dead, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !keep {
		err = os.RemoveAll(s.dir(id))
	}
	if lk != nil {
		unlockFile(lk)
	}
	if err != nil {
		return fmt.Errorf("sweep snapshot %s: %w", id, err)
	}
	return nil
}
