// Package store owns one store root: the metadata DB, the content store,
// the image names, the build cache records, the snapshots and the
// per-process temp dirs. It is what every command opens first.
//
// Lifecycle: Open locks the root shared, sweeps what killed processes left
// behind (mount points, active snapshots, ingest and temp files) and claims
// this process's temp dir; Close releases them. No repair step is ever
// needed, and several processes may open one root at once: Prune alone
// takes the root's lock exclusively, waiting for the others.
//
// The operations on images (Image, Images, Tag, Untag, Resolve, History,
// Save, Load, Import, Export, Pull) and on the cache (DiskUsage, Prune) are
// methods. A build reaches the parts it runs on through Parts: builder is
// its one user.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/contenthash"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/runc"
	"github.com/strata-build/strata/internal/atomicfile"
	"github.com/strata-build/strata/internal/lockfile"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/registry"
)

// metadataFile is the metadata DB under the root.
const metadataFile = "metadata.db"

// Store is an open store root.
type Store struct {
	root        string
	db          *metadata.DB
	content     *content.Store
	images      *images.Store
	records     *cache.Records
	snapshotter snapshot.Snapshotter
	checksums   *contenthash.Cache
	sandbox     executor.Executor
	sources     *blobSources

	tmp       string   // this process's mount points and sandbox state
	lock      *os.File // held while the process lives; a sweep skips locked dirs
	storeLock *os.File // shared while open, exclusive during Prune
}

// Parts are the parts of an open store that a build runs on. They stay
// valid until the store is closed.
type Parts struct {
	Content     *content.Store
	Images      *images.Store
	Records     *cache.Records
	Snapshotter snapshot.Snapshotter
	Checksums   *contenthash.Cache
	// Executor is the built-in sandbox, made on its first use.
	Executor executor.Executor
	// TempDir is this process's private temp dir: mount points and
	// executor state live there; it is removed on Close, or swept by the
	// next process after a crash.
	TempDir string
	// CacheMountDir holds the directories of RUN --mount=type=cache.
	CacheMountDir string
	// Sources records the registry repositories of blobs, for pushes that
	// mount rather than upload.
	Sources registry.BlobSources
}

// Parts returns the store's parts for a build.
func (s *Store) Parts() Parts {
	return Parts{
		Content:       s.content,
		Images:        s.images,
		Records:       s.records,
		Snapshotter:   s.snapshotter,
		Checksums:     s.checksums,
		Executor:      s.sandbox,
		TempDir:       s.tmp,
		CacheMountDir: filepath.Join(s.root, "cache-mounts"),
		Sources:       s.sources,
	}
}

// Root is the store's root directory (absolute).
func (s *Store) Root() string { return s.root }

// DefaultRoot is /var/lib/strata for root, else $XDG_DATA_HOME/strata;
// STRATA_ROOT overrides both.
func DefaultRoot() string {
	if r := os.Getenv("STRATA_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/strata"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "strata")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "strata")
}

// Open opens (creating if needed) the store at root and sweeps debris.
func Open(ctx context.Context, root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"", "tmp", "cache-mounts", "checksums"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("create store %s: %w", root, err)
		}
	}
	s := &Store{root: root}
	if err := s.open(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	var err error
	if err := s.lockShared(ctx); err != nil {
		return err
	}
	if s.db, err = metadata.Open(filepath.Join(s.root, metadataFile)); err != nil {
		return err
	}
	if s.content, err = content.Open(filepath.Join(s.root, "content")); err != nil {
		return err
	}
	s.images = images.NewStore(s.db)
	s.sources = newBlobSources(s.db)
	s.records = cache.NewRecords(s.db)
	if s.snapshotter, err = snapshot.New(filepath.Join(s.root, "snapshots"), s.db); err != nil {
		return err
	}
	if err := s.sweep(ctx); err != nil {
		return fmt.Errorf("sweep store %s: %w", s.root, err)
	}
	if err := s.claimTmp(); err != nil {
		return err
	}
	if s.checksums, err = contenthash.OpenCache(filepath.Join(s.root, "checksums")); err != nil {
		return err
	}
	s.sandbox = &lazySandbox{opts: executor.SandboxOptions{StateDir: s.tmp}}
	return nil
}

// claimTmp makes this process's private temp dir and holds its lock.
func (s *Store) claimTmp() error {
	base := filepath.Join(s.root, "tmp")
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	dir := filepath.Join(base, "p"+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
	f, err := lockfile.Create(dir + ".lock")
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		os.Remove(f.Name())
		f.Close()
		return err
	}
	s.tmp, s.lock = dir, f
	return nil
}

// sweep removes the temp dirs of dead processes (unmounting what they left
// mounted), their active snapshots and their ingest files.
func (s *Store) sweep(ctx context.Context) error {
	base := filepath.Join(s.root, "tmp")
	entries, err := os.ReadDir(base)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := filepath.Join(base, e.Name())
		switch {
		case e.IsDir():
			if err := s.sweepTmp(name); err != nil {
				return err
			}
		case strings.HasPrefix(e.Name(), lockfile.NewPrefix), strings.HasSuffix(e.Name(), ".lock"):
			// A lock being made by a process that died, or one whose
			// process died before making its dir or after removing it.
			if strings.HasSuffix(e.Name(), ".lock") && exists(strings.TrimSuffix(name, ".lock")) {
				continue
			}
			f, dead, err := lockfile.LockIfDead(name)
			if err != nil {
				return err
			}
			if dead && f != nil {
				os.Remove(name)
				f.Close()
			}
		}
	}
	if err := s.snapshotter.Sweep(ctx); err != nil {
		return err
	}
	if err := sweepOld(filepath.Join(s.root, "checksums", atomicfile.TempPattern), time.Hour); err != nil {
		return err
	}
	return s.content.Sweep(time.Hour)
}

// sweepOld removes the files matching pattern that were last written more
// than age ago: temp files a killed process never renamed into place (a
// live writer renames its file within moments).
func sweepOld(pattern string, age time.Duration) error {
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || time.Since(fi.ModTime()) < age {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// sweepTmp removes the temp dir of a dead process: one whose lock file
// (dir+".lock", made and locked before the dir) no process holds, or which
// has none left. Containers it left running under --runtime=runc are
// stopped first, then what it left mounted is unmounted.
func (s *Store) sweepTmp(dir string) error {
	lock := dir + ".lock"
	f, dead, err := lockfile.LockIfDead(lock)
	if err != nil || !dead {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	if rs := filepath.Join(dir, "runc"); exists(rs) {
		if err := runc.Sweep(runc.Options{StateDir: rs}); err != nil {
			return err
		}
	}
	if err := unmountBelow(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// unmountBelow detaches every mount point at or under dir, deepest first.
func unmountBelow(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	points := make([]string, 0, len(mounts))
	for _, m := range mounts {
		points = append(points, m.Mountpoint)
	}
	sort.Strings(points) // parents before children
	for i := len(points) - 1; i >= 0; i-- {
		if err := mount.Unmount(points[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the store: the checksum cache is saved, the process's
// temp dir goes away and the locks are released. Every step is tried; the
// error joins those that failed.
func (s *Store) Close() error {
	var errs []error
	if s.checksums != nil {
		errs = append(errs, s.checksums.Save())
	}
	if s.sources != nil {
		errs = append(errs, s.sources.flush())
	}
	if s.tmp != "" {
		errs = append(errs, unmountBelow(s.tmp), os.RemoveAll(s.tmp))
		if err := os.Remove(s.tmp + ".lock"); !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		errs = append(errs, s.lock.Close())
		s.tmp = ""
	}
	if s.storeLock != nil {
		errs = append(errs, s.storeLock.Close())
		s.storeLock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", s.root, err)
	}
	return nil
}

// lazySandbox makes the sandbox on the first RUN, so a build that runs
// nothing (all cached) does not compile the seccomp filter or sweep
// networks.
type lazySandbox struct {
	opts executor.SandboxOptions
	once sync.Once
	sb   *executor.Sandbox
	err  error
}

func (l *lazySandbox) Run(ctx context.Context, spec executor.Spec, sio executor.IO) error {
	l.once.Do(func() { l.sb, l.err = executor.NewSandbox(l.opts) })
	if l.err != nil {
		return l.err
	}
	return l.sb.Run(ctx, spec, sio)
}
