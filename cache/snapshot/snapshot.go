// Package snapshot keeps the filesystem trees a build works on, in the
// manner of containerd's snapshotters.
//
// Vocabulary:
//
//   - An active snapshot, made by Prepare, is writable: a RUN step or a file
//     op mounts it and changes it.
//   - A view, made by View, is an active snapshot that is mounted read-only.
//   - A committed snapshot, made by Commit from an active one, is immutable
//     and known by its name (a chain ID, a cache-key digest). Only committed
//     snapshots can be parents.
//
// Keys and names are caller strings that live in one namespace; on disk every
// snapshot is a directory with a random id under root/snapshots, so a Commit
// renames nothing on disk, only the record in the metadata DB.
//
// A typical use:
//
//	ms, _ := sn.Prepare(ctx, "build-1f3a", "sha256:<parent chain id>")
//	// mount ms in a sandbox, run a command, unmount
//	err := sn.Commit(ctx, "sha256:<cache key>", "build-1f3a")
//	if errors.Is(err, errdefs.ErrAlreadyExists) {
//		// another process committed the same step first: use its snapshot
//		_ = sn.Remove(ctx, "build-1f3a")
//	}
//
// Snapshotters never mount anything themselves: they return mounts as data
// (mount.Mount) and the caller performs them where it wants (see mount.All).
//
// Crash safety: a record is written before the directories on create and
// deleted before them on remove. Every active snapshot holds an flock on
// root/locks/<id>.lock for as long as its process lives; Sweep removes the
// active snapshots whose lock it can take (their process died) and the
// directories that no record owns. Several processes may share one root.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/mount"
)

// ErrHasChildren is returned by Remove for a committed snapshot that other
// snapshots use as their parent.
var ErrHasChildren = errors.New("snapshot has children")

// Kind says whether a snapshot is writable, read-only or immutable.
type Kind string

const (
	KindActive    Kind = "active"
	KindView      Kind = "view"
	KindCommitted Kind = "committed"
)

// Info describes one snapshot.
type Info struct {
	Name    string // the key of an active snapshot or view, the name of a committed one
	Parent  string // the parent's name, "" for none
	Kind    Kind
	Created time.Time
}

// Usage is the disk space a snapshot's own directory takes: for overlay the
// changes only, for the naive snapshotter the whole tree.
type Usage struct {
	Size   int64 // bytes of allocated blocks, hard links counted once
	Inodes int64
}

// Snapshotter makes, commits and removes snapshots. A key or name that has
// no snapshot is an error wrapping errdefs.ErrNotFound; a key or name that
// is taken, one wrapping errdefs.ErrAlreadyExists.
type Snapshotter interface {
	// Prepare makes an active snapshot named key over parent ("" for an
	// empty tree) and returns how to mount it read-write.
	Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// View makes a read-only active snapshot named key over parent.
	View(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// Mounts returns how to mount an active snapshot or view again.
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	// Commit makes the active snapshot key immutable under name. Its error
	// wraps errdefs.ErrAlreadyExists if name is taken (another process won
	// the race): the caller then Removes its key and uses name.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot. It refuses (ErrHasChildren) a committed
	// snapshot that has children.
	Remove(ctx context.Context, key string) error
	Stat(ctx context.Context, key string) (Info, error)
	Usage(ctx context.Context, key string) (Usage, error)
	// UsageOf is the Usage of each of keys, in order, with a file that is
	// hard-linked into several of them counted once, in the first: the
	// sizes add up to what the snapshots hold on disk together.
	UsageOf(ctx context.Context, keys []string) ([]Usage, error)
	// Walk calls fn for every snapshot, in name order. fn may call the
	// snapshotter.
	Walk(ctx context.Context, fn func(Info) error) error
	// Sweep removes active snapshots whose process died (each active
	// snapshot holds an flock on a lock file while its process lives; Sweep
	// removes those it can lock) and directories with no record.
	Sweep(ctx context.Context) error
}

// New returns an overlay snapshotter at root when overlayfs works there, and
// a naive one otherwise.
func New(root string, db *metadata.DB) (Snapshotter, error) {
	s, err := NewOverlay(root, db)
	if err == nil {
		return s, nil
	}
	n, nerr := NewNaive(root, db)
	if nerr != nil {
		return nil, fmt.Errorf("%w (and overlay: %v)", nerr, err)
	}
	return n, nil
}
