package fileop

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/internal/xattr"
)

// Reuse lets a copy into an overlay snapshot take unchanged files from an
// earlier result of the same copy instead of writing them again: such a
// file is hard-linked from the earlier snapshot's own directory (Prev) into
// the new snapshot's upper directory (Upper).
//
// Prev must be the own directory of a committed snapshot made by the same
// copy action over the same parent snapshot as destRoot, and PrevFiles the
// entry digests (contenthash.Sum.Files, keyed by the path each entry is read
// from) of what that copy read; Files are this copy's. A file is linked only when its
// entry digest is unchanged, nothing is in its way in destRoot, and the
// earlier file already has exactly the size, owner, mode, mtime and
// extended attributes this copy would give it: a shared inode is never
// written to. Everything else is copied as usual.
//
// The copy only decides which files to link; Link makes the links once the
// destination is unmounted, so the upper directory never changes under a
// live overlay mount (which the kernel leaves undefined).
type Reuse struct {
	Upper, Prev      string
	Files, PrevFiles map[string]digest.Digest

	mu    sync.Mutex
	links []link
}

// link is one file to hard-link from the earlier snapshot into Upper.
type link struct {
	prev, dst string
}

// Link makes the links the copy decided on, into the unmounted upper
// directory, and gives the directories they land in back the times the copy
// set. An earlier file that cannot be linked (another file system, a limit
// on links) is copied instead, with the same metadata.
func (r *Reuse) Link() error {
	r.mu.Lock()
	links := r.links
	r.links = nil
	r.mu.Unlock()
	times := map[string][2]unix.Timespec{}
	for _, l := range links {
		dir := filepath.Dir(l.dst)
		if _, ok := times[dir]; ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil {
			return fmt.Errorf("link unchanged files: %w", err)
		}
		times[dir] = [2]unix.Timespec{st.Atim, st.Mtim}
	}
	for _, l := range links {
		// An overlay whiteout the copy left at the name (it removed what a
		// lower layer had there) is replaced; the link hides the lower file
		// just as well.
		var st unix.Stat_t
		if unix.Lstat(l.dst, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			if err := os.Remove(l.dst); err != nil {
				return fmt.Errorf("link unchanged file %s: %w", l.dst, err)
			}
		}
		if err := unix.Linkat(unix.AT_FDCWD, l.prev, unix.AT_FDCWD, l.dst, 0); err != nil {
			if err := copyLinked(l.prev, l.dst); err != nil {
				return fmt.Errorf("link unchanged file %s: %w", l.dst, err)
			}
		}
	}
	for dir, ts := range times {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("restore times of %s: %w", dir, err)
		}
	}
	return nil
}

// copyLinked copies the regular file prev to dst with its owner, mode,
// times and extended attributes.
func copyLinked(prev, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(prev, &st); err != nil {
		return err
	}
	in, err := os.Open(prev)
	if err != nil {
		return err
	}
	defer in.Close()
	mtime := time.Unix(st.Mtim.Unix())
	return writeFileFrom(in, dst, meta{mode: st.Mode & 0o7777, uid: int(st.Uid), gid: int(st.Gid), atime: mtime, mtime: mtime, xattrsFrom: prev})
}

// reuser is the state of one copy's reuse.
type reuser struct {
	*Reuse
	mu        sync.Mutex
	linked    map[inode]bool // earlier inodes already linked by this copy
	upperDirs map[string]bool
}

// reuseFile links the regular file e from the earlier snapshot at host when
// that is safe, and reports whether it did. A false result with a nil error
// means the caller copies the file.
func (c *copier) reuseFile(e local.Entry, host string) (bool, error) {
	r := c.reuse
	st := e.Info.Sys().(*syscall.Stat_t)
	// The same digest under the same source path: the file read has the
	// content the earlier copy wrote (the digest also covers where it lands).
	src := c.sel.SourcePath(e)
	d, ok := r.Files[src]
	if !ok || st.Nlink != 1 || r.PrevFiles[src] != d {
		return false, nil
	}
	if _, err := os.Lstat(host); !errors.Is(err, fs.ErrNotExist) {
		return false, nil // something to replace: copy through the mount
	}
	rel := local.RelTo(c.root, host)
	if rel == "." || rel == "" {
		return false, nil
	}
	prev := filepath.Join(r.Prev, filepath.FromSlash(rel))
	var ps unix.Stat_t
	if err := unix.Lstat(prev, &ps); err != nil || ps.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil
	}
	m := c.entryMeta(e)
	if ps.Size != st.Size || int(ps.Uid) != m.uid || int(ps.Gid) != m.gid || ps.Mode&0o7777 != m.mode ||
		ps.Mtim.Nano() != m.mtime.UnixNano() || !r.claim(inode{ps.Dev, ps.Ino}) {
		return false, nil
	}
	if same, err := sameXattrs(e.Host, prev); err != nil || !same {
		return false, nil
	}
	parent, err := c.upperDir(path.Dir(rel), filepath.Dir(host))
	if err != nil || parent == "" {
		return false, err
	}
	r.Reuse.mu.Lock()
	r.Reuse.links = append(r.Reuse.links, link{prev: prev, dst: filepath.Join(parent, path.Base(rel))})
	r.Reuse.mu.Unlock()
	return true, nil
}

// claim marks an earlier inode as linked by this copy and reports whether
// it was still free: one earlier file never becomes two linked ones.
func (r *reuser) claim(i inode) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.linked[i] {
		return false
	}
	r.linked[i] = true
	return true
}

// upperDir returns the directory of Upper that holds the entries of the
// destination directory rel (mounted at host), copying it up first when it
// so far only exists in a lower layer. It returns "" when the directory is
// not a plain directory of Upper.
func (c *copier) upperDir(rel, host string) (string, error) {
	r := c.reuse
	dir := filepath.Join(r.Upper, filepath.FromSlash(rel))
	r.mu.Lock()
	known := r.upperDirs[dir]
	r.mu.Unlock()
	if known {
		return dir, nil
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Creating an entry through the mount copies the directory (and its
		// parents) up; the directory's mtime changes, as any copy into it
		// changes it.
		if err := copyUp(host); err != nil {
			return "", fmt.Errorf("copy to %s: %w", c.show(host), err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil || !fi.IsDir() {
		return "", nil
	}
	r.mu.Lock()
	r.upperDirs[dir] = true
	r.mu.Unlock()
	return dir, nil
}

// copyUp makes the overlay copy the merged directory host up into its
// upper dir, by creating and removing an entry in it.
func copyUp(host string) error {
	f, err := os.CreateTemp(host, ".strata-copyup-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// sameXattrs says whether a and b carry the same extended attributes.
func sameXattrs(a, b string) (bool, error) {
	xa, err := xattr.All(a)
	if err != nil {
		return false, err
	}
	xb, err := xattr.All(b)
	if err != nil {
		return false, err
	}
	return maps.Equal(xa, xb), nil
}
