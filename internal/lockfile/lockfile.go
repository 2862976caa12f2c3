// Package lockfile tells live processes from dead ones by lock files: a
// process holds an exclusive flock on its lock file for as long as it lives
// (the kernel drops the lock when the last descriptor of the open file is
// closed, so also when the process is killed), and a sweep that can take the
// lock knows that whatever the file stands for was left by a dead process.
//
// Create makes a lock file that is already locked when it appears under its
// name, so a sweep never sees a live one unlocked. LockIfDead takes the lock
// of a file without waiting and makes sure the file it locked is still the
// one at the path: a file unlinked (and maybe made anew by its owner)
// between the open and the lock is never taken for a dead one.
//
// TryExclusive, Exclusive and Shared lock an open file, the latter two
// waiting for other holders until a context ends.
//
// Lock files are flocks, so they work between processes on one machine;
// they arbitrate nothing on a file system shared by several machines.
package lockfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// NewPrefix starts the temporary name under which Create makes a lock file
// on a file system without O_TMPFILE, before linking it under its path. A
// sweep may treat such a file like any lock file (LockIfDead, then remove
// it): Create holds it locked, and starts again when a sweep removed it in
// the moment before it was locked. Create removes it once linked; one left
// behind belongs to a process killed in between.
const NewPrefix = ".new-"

// tries bounds how often Create and LockIfDead start again when a file
// changed under them.
const tries = 5

// createTries bounds how often createNamed makes a new temporary name after
// a sweep took the last one: a sweep reaches such a name only in the moment
// between its creation and its lock, so losing that race many times in a
// row means a sweep that never stops.
const createTries = 100

// Create makes the file path, mode 0600, and returns it open for reading
// and writing, holding an exclusive lock. It fails when path exists. The
// file is made unnamed (O_TMPFILE), locked, then linked in under its name;
// where the file system has no O_TMPFILE it is made under a temporary name
// beginning with NewPrefix in the same directory instead.
func Create(path string) (*os.File, error) {
	f, err := createTmpfile(path)
	if errors.Is(err, errNoTmpfile) {
		f, err = createNamed(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create lock %s: %w", path, err)
	}
	return f, nil
}

var errNoTmpfile = errors.New("no O_TMPFILE")

func createTmpfile(path string) (*os.File, error) {
	fd, err := unix.Open(filepath.Dir(path), unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, errNoTmpfile
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		f.Close()
		return nil, &os.LinkError{Op: "link", Old: "O_TMPFILE", New: path, Err: err}
	}
	return f, nil
}

// createNamed makes the lock under a temporary name, locks it, makes sure
// no sweep removed it before the lock, and links it in under path.
func createNamed(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	for range createTries {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tmp := filepath.Join(dir, NewPrefix+filepath.Base(path)+"-"+hex.EncodeToString(b[:]))
		fd, err := unix.Open(tmp, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: tmp, Err: err}
		}
		f := os.NewFile(uintptr(fd), path)
		ok, err := TryExclusive(f)
		if err == nil && ok {
			ok, err = samePath(f, tmp)
		}
		if err != nil || !ok {
			f.Close()
			if err != nil {
				os.Remove(tmp)
				return nil, err
			}
			continue // a sweep took it first
		}
		err = os.Link(tmp, path)
		os.Remove(tmp)
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return nil, errors.New("removed while being locked, again and again")
}

// testHookOpened, when set, runs in LockIfDead between the open and the
// lock.
var testHookOpened func()

// LockIfDead takes the lock file at path if no live process holds it.
//
//   - dead and f set: nobody held it; f holds it now. Remove the path (while
//     holding f) if the owner's things are gone, then close f.
//   - dead and f nil: there is no file at path.
//   - not dead: a live process holds it (err is nil), or it could not be
//     told (err says why).
//
// The file locked is checked to still be the one at path, so a lock file
// unlinked or replaced by its owner meanwhile is looked at again.
func LockIfDead(path string) (f *os.File, dead bool, err error) {
	for range tries {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		if testHookOpened != nil {
			testHookOpened()
		}
		ok, err := TryExclusive(f)
		if err != nil || !ok {
			f.Close()
			return nil, false, err // !ok: held by a live process
		}
		same, err := samePath(f, path)
		if err != nil {
			f.Close()
			return nil, false, err
		}
		if same {
			return f, true, nil
		}
		f.Close() // unlinked or replaced since the open: look again
	}
	return nil, false, nil // changing all the time: its owner is busy
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// TryExclusive takes an exclusive lock on f without waiting; ok is false
// when another open file holds a lock on it.
func TryExclusive(f *os.File) (ok bool, err error) {
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return true, nil
}

// Exclusive takes an exclusive lock on f, waiting until the other holders
// release theirs or ctx ends. On f holding a shared lock it converts it
// (which is not atomic: another process may take the lock in between).
func Exclusive(ctx context.Context, f *os.File) error {
	return wait(ctx, f, unix.LOCK_EX)
}

// Shared takes a shared lock on f, waiting until no other open file holds an
// exclusive one or ctx ends. On f holding an exclusive lock it converts it.
func Shared(ctx context.Context, f *os.File) error {
	return wait(ctx, f, unix.LOCK_SH)
}

// pollInterval is how often a waiting lock is tried again; flock has no
// wait that a context can end.
const pollInterval = 20 * time.Millisecond

func wait(ctx context.Context, f *os.File, how int) error {
	var t *time.Ticker
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		if t == nil {
			t = time.NewTicker(pollInterval)
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
