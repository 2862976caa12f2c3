package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/internal/lockfile"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// Cache mounts (RUN --mount=type=cache) are directories under
// Worker.CacheMountDir named by the digest of their id. They persist across
// builds and are never part of a layer; only the mount's options enter the
// step's cache key, never what the directory holds.
//
// Each directory has a lock file beside it ("<dir>.lock") that arbitrates
// the sharing modes, across steps and across processes on one store:
//
//   - shared: any number of steps hold a shared lock and use it together;
//   - locked: a step waits for an exclusive lock, so it is the only user;
//   - private: a step takes the first of "<dir>", "<dir>.p1", "<dir>.p2", ...
//     it can lock exclusively at once; the extra instances persist too.
//
// A new directory is created in the process's temp dir, seeded with the
// from= stage's source= subpath when given (else empty, with the mount's
// mode, uid and gid), and renamed into place, so a killed build never
// leaves a half-made cache.
//
// The wait for a directory's lock is reported as a progress.Waited event
// of the step, whether or not the lock was free at once.

// cacheMount prepares one cache mount; the release drops its lock.
func (o *execOp) cacheMount(ctx context.Context, m llb.Mount, inputs []solver.Result) (executor.Mount, func(), error) {
	cm := llb.CacheMount{ID: m.Dest, Sharing: llb.SharingShared}
	if m.Cache != nil {
		cm = *m.Cache
		if cm.ID == "" {
			cm.ID = m.Dest
		}
	}
	base := o.w.CacheMountDir + "/" + opDigest("cache-mount", cm.ID).Encoded()
	since := time.Now()
	dir, lock, err := lockCache(ctx, base, cm.Sharing)
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("cache mount %s (id %s): %w", m.Dest, cm.ID, err)
	}
	o.waited(since, fmt.Sprintf("cache mount %s (id %s, %s)", m.Dest, cm.ID, cmp.Or(cm.Sharing, llb.SharingShared)))
	release := func() { lock.Close() }
	if err := o.ensureCacheDir(ctx, dir, m, cm, inputs); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("cache mount %s (id %s): %w", m.Dest, cm.ID, err)
	}
	return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: dir, Options: bindOptions(m.Readonly)}}}, release, nil
}

// waited reports that the step waited for lock from since until now.
func (o *execOp) waited(since time.Time, lock string) {
	if o.w.Progress == nil {
		return
	}
	o.w.Progress.Emit(progress.Event{Vertex: o.v.Digest(), Name: o.v.Meta.Name, Status: progress.Waited, Time: time.Now(), Since: since, Lock: lock})
}

// lockCache picks the directory of a cache mount under its sharing mode and
// returns it with the open lock file that holds it.
func lockCache(ctx context.Context, base string, sharing llb.CacheSharing) (string, *os.File, error) {
	switch sharing {
	case llb.SharingPrivate:
		for i := 0; ; i++ {
			dir := base
			if i > 0 {
				dir = base + ".p" + strconv.Itoa(i)
			}
			f, err := openLock(dir)
			if err != nil {
				return "", nil, err
			}
			ok, err := lockfile.TryExclusive(f)
			if ok {
				return dir, f, nil
			}
			f.Close()
			if err != nil {
				return "", nil, fmt.Errorf("lock %s: %w", dir, err)
			}
		}
	case llb.SharingLocked:
		f, err := openLock(base)
		if err != nil {
			return "", nil, err
		}
		if err := lockfile.Exclusive(ctx, f); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("lock %s: %w", base, err)
		}
		return base, f, nil
	default:
		f, err := openLock(base)
		if err != nil {
			return "", nil, err
		}
		if err := lockfile.Shared(ctx, f); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("lock %s: %w", base, err)
		}
		return base, f, nil
	}
}

func openLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	return f, nil
}

// ensureCacheDir creates dir on first use: seeded from the mount's input
// (from=, source=) or empty with the mount's mode and owner.
func (o *execOp) ensureCacheDir(ctx context.Context, dir string, m llb.Mount, cm llb.CacheMount, inputs []solver.Result) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(o.w.TempDir, "cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh := tmp + "/dir"
	if m.Input >= 0 {
		ref, rerr := ready(ctx, inputs[m.Input])
		if rerr != nil {
			return rerr
		}
		err = o.w.withView(ctx, ref, func(root string) error {
			src, err := subpath(root, m.Selector)
			if err != nil {
				return err
			}
			return snapshot.CopyTree(src, fresh)
		})
		if err != nil {
			return fmt.Errorf("seed from %s: %w", m.Selector, err)
		}
	} else if err := os.Mkdir(fresh, 0o755); err != nil {
		return err
	}
	if m.Input < 0 || cm.UID != 0 || cm.GID != 0 {
		if err := os.Lchown(fresh, cm.UID, cm.GID); err != nil {
			return err
		}
	}
	if cm.Mode != 0 {
		if err := os.Chmod(fresh, os.FileMode(cm.Mode&0o7777)); err != nil {
			return err
		}
	}
	// Another step may have made it meanwhile: the first one wins.
	err = unix.Renameat2(unix.AT_FDCWD, fresh, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}
