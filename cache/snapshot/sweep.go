package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// errLocked means another open file holds the lock: its process is alive.
var errLocked = errors.New("lock is held")

// lockFile opens (creating it when create is set) and exclusively flocks the
// lock file at path without waiting. It makes sure the locked file is still
// the one at path, so a lock taken on a file that Sweep has just unlinked is
// never mistaken for a live one.
func lockFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat lock %s: %w", path, err)
	}
	if err := unix.Stat(path, &now); err != nil || held.Ino != now.Ino || held.Dev != now.Dev {
		f.Close()
		return nil, errLocked // unlinked or replaced under us
	}
	return f, nil
}

// unlockFile removes the lock file (when unlink is set) while still holding
// it, then releases it.
func unlockFile(f *os.File, unlink bool) {
	if unlink {
		_ = os.Remove(f.Name())
	}
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
		if id, ok := strings.CutSuffix(de.Name(), ".lock"); ok {
			ids[id] = true
		}
	}
	return nil
}

// sweepOne removes snapshot id if no live process holds its lock and it is
// not committed. The record goes first, then the directory, then the lock.
func (s *snapshotter) sweepOne(id string) error {
	lk, err := lockFile(s.lockPath(id), true)
	if errors.Is(err, errLocked) {
		return nil // its process is alive
	}
	if err != nil {
		return fmt.Errorf("sweep snapshot %s: %w", id, err)
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
	unlockFile(lk, true)
	if err != nil {
		return fmt.Errorf("sweep snapshot %s: %w", id, err)
	}
	return nil
}
