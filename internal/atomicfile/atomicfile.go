// Package atomicfile writes files so that a reader of the path sees either
// the old content or the whole new content, never a part, even across a
// crash or power loss: the bytes go to a temporary file in the same
// directory, which is synced, renamed over the path, and then the directory
// is synced so the rename itself is durable.
//
// Temporary files are named TempPrefix + the target's base name + "-" + a
// random suffix (".tmp-index.json-1234567"), so a sweep can find the ones a
// killed process never renamed with the glob filepath.Join(dir, TempPattern).
//
// WriteFile writes a byte slice; New returns a File to stream into, which
// Commit puts in place and Abort (or Close before Commit) removes.
//
// This package does not build on an existing helper such as
// github.com/containerd/continuity's AtomicWriteFile: that one has no
// streaming form (the exporter streams blobs of gigabytes), does not sync
// the directory after the rename, sets the mode by path rather than on the
// open file, and its package brings protobuf and its manifest code to every
// importer (33 more packages; a program calling only it is 3.6 MB larger
// than one calling os.WriteFile). What is needed here is some 100 lines on
// os.CreateTemp.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the name of every temporary file this package makes.
const TempPrefix = ".tmp-"

// TempPattern matches (with filepath.Glob or filepath.Match) the names of
// the temporary files this package makes in a directory.
const TempPattern = TempPrefix + "*"

// maxBase bounds how much of the target's base name goes into the temporary
// name, so a long name (up to NAME_MAX) still leaves room for the prefix and
// the random suffix.
const maxBase = 128

// WriteFile writes data to path atomically with mode perm (set exactly: the
// umask does not apply). On error the previous file at path, if any, is
// left as it was and no temporary file remains.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := New(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// File is a file being written to a temporary name, which Commit renames to
// its path. It is not safe for concurrent use. Defer Close right after New:
// before Commit it discards the file, after it does nothing.
type File struct {
	f    *os.File
	path string
	done bool // committed or aborted
}

// New starts a file that Commit will put at path, with mode perm (set
// exactly: the umask does not apply).
func New(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{f: f, path: path}, nil
}

// Chown gives the file an owner before it is committed (a file replaced
// for its owner by root keeps that owner).
func (f *File) Chown(uid, gid int) error { return f.f.Chown(uid, gid) }

// Path is the path Commit puts the file at.
func (f *File) Path() string { return f.path }

// Write appends p to the file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, fmt.Errorf("write %s: file already committed or aborted", f.path)
	}
	return f.f.Write(p)
}

// Commit syncs the file, renames it over its path and syncs the directory.
// When it fails before the rename, the temporary file is removed and the
// previous file at path, if any, stays; a failure to sync the directory is
// reported although the new file is in place.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: file already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.f.Name()
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	return nil
}

// Abort discards the file; the previous file at path, if any, stays. After
// Commit or Abort it does nothing.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.f.Close()
	if rerr := os.Remove(f.f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// Close is Abort, so that a deferred Close cleans up after any failure
// before Commit and is harmless after it.
func (f *File) Close() error { return f.Abort() }

// syncDir makes a rename in dir durable. A file system that cannot sync a
// directory (EINVAL) has nothing more to do.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}
