package fileop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/internal/bufcopy"
	"github.com/strata-build/strata/internal/xattr"
	"github.com/strata-build/strata/llb"
	"golang.org/x/sys/unix"
)

// copier holds the state of one Copy: resolved owner and mode rules, hard
// links seen so far and directories whose metadata is set at the end.
type copier struct {
	ctx   context.Context
	sel   *local.Selection
	root  string
	a     *llb.CopyAction
	owner *ids
	chmod modeFunc
	links map[inode]string // source inode -> first destination path
	// pending directories get their metadata after their contents, in
	// reverse order of creation.
	pending []dirMeta
	reuse   *reuser // nil unless the copy may link unchanged files
	workers int     // bound on regular files written at once
}

type inode struct{ dev, ino uint64 }

// meta is the metadata one written entry gets.
type meta struct {
	uid, gid     int
	mode         uint32 // permission, setuid, setgid and sticky bits
	atime, mtime time.Time
	xattrsFrom   string // source path to copy extended attributes from
}

type dirMeta struct {
	host string
	meta
}

func newCopier(ctx context.Context, sel *local.Selection, destRoot string, a *llb.CopyAction) (*copier, error) {
	owner, err := resolveChown(destRoot, a.Chown)
	if err != nil {
		return nil, err
	}
	chmod, err := parseChmod(a.Chmod)
	if err != nil {
		return nil, err
	}
	return &copier{ctx: ctx, sel: sel, root: filepath.Clean(destRoot), a: a, owner: owner,
		chmod: chmod, links: map[inode]string{}}, nil
}

// defaultDirMeta is the metadata of a destination directory the copy had
// to create: 0755, the copy's owner, the current (or fixed) time.
func (c *copier) defaultDirMeta(host string) dirMeta {
	m := meta{mode: 0o755, atime: time.Now(), mtime: time.Now()}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	if c.a.Timestamp != nil {
		m.atime, m.mtime = *c.a.Timestamp, *c.a.Timestamp
	}
	return dirMeta{host: host, meta: m}
}

// entryMeta computes what a copied entry gets from its source.
func (c *copier) entryMeta(e local.Entry) meta {
	st := e.Info.Sys().(*syscall.Stat_t)
	m := meta{uid: int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777,
		atime: time.Unix(st.Atim.Unix()), mtime: time.Unix(st.Mtim.Unix()), xattrsFrom: e.Host}
	if c.sel.Source.Context {
		m.uid, m.gid = 0, 0
	}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	if c.chmod != nil && e.Info.Mode()&fs.ModeSymlink == 0 {
		m.mode = c.chmod(m.mode, e.Info.IsDir())
	}
	if c.a.Timestamp != nil {
		m.atime, m.mtime = *c.a.Timestamp, *c.a.Timestamp
	}
	return m
}

// place writes entry e at host and returns the path actually used (for a
// directory reached through an existing symlink, the resolved directory).
func (c *copier) place(e local.Entry, host string) (string, error) {
	if e.Info.IsDir() {
		return c.placeDir(e, host)
	}
	if c.reuse != nil && e.Info.Mode().IsRegular() {
		if ok, err := c.reuseFile(e, host); err != nil || ok {
			return host, err
		}
	}
	if err := c.clear(host); err != nil {
		return "", err
	}
	st := e.Info.Sys().(*syscall.Stat_t)
	key := inode{uint64(st.Dev), st.Ino}
	if st.Nlink > 1 {
		if first, ok := c.links[key]; ok {
			if err := os.Link(first, host); err != nil {
				return "", fmt.Errorf("copy hard link %s: %w", c.show(host), err)
			}
			return host, nil
		}
		c.links[key] = host
	}
	m := c.entryMeta(e)
	var err error
	switch mode := e.Info.Mode(); {
	case mode.IsRegular():
		err = c.writeFile(e.Host, host, m)
	case mode&fs.ModeSymlink != 0:
		err = writeSymlink(e.Link, host, m)
	case mode&fs.ModeSocket != 0:
		return host, nil // sockets are not copied, as in docker build
	default:
		err = writeSpecial(host, st.Mode&unix.S_IFMT, st.Rdev, m)
	}
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", local.RelTo(c.sel.Source.Root, e.Host), c.show(host), err)
	}
	return host, nil
}

// clear removes a non-directory at host so a new entry can take its place.
func (c *copier) clear(host string) error {
	fi, err := os.Lstat(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy to %s: %w", c.show(host), err)
	}
	if fi.IsDir() {
		return fmt.Errorf("copy to %s: cannot overwrite directory with non-directory", c.show(host))
	}
	if err := os.Remove(host); err != nil {
		return fmt.Errorf("copy to %s: remove existing file: %w", c.show(host), err)
	}
	return nil
}

// placeDir creates a directory at host, or reuses an existing one (also
// through a symlink, resolved inside the destination root).
func (c *copier) placeDir(e local.Entry, host string) (string, error) {
	fi, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(host, 0o700); err != nil {
			return "", fmt.Errorf("create directory %s: %w", c.show(host), err)
		}
		c.pending = append(c.pending, dirMeta{host: host, meta: c.entryMeta(e)})
		return host, nil
	case err != nil:
		return "", fmt.Errorf("copy to %s: %w", c.show(host), err)
	case fi.IsDir():
		return host, nil
	case fi.Mode()&fs.ModeSymlink != 0:
		resolved, err := local.Resolve(c.root, local.RelTo(c.root, host))
		if err != nil {
			return "", err
		}
		if isDir(resolved) {
			return resolved, nil
		}
	}
	return "", fmt.Errorf("copy to %s: cannot overwrite non-directory with directory", c.show(host))
}

// finish applies directory metadata, deepest and latest first.
func (c *copier) finish() error {
	for i := len(c.pending) - 1; i >= 0; i-- {
		d := c.pending[i]
		if err := applyMeta(d.host, d.meta, true); err != nil {
			return fmt.Errorf("set metadata of %s: %w", c.show(d.host), err)
		}
	}
	c.pending = nil
	return nil
}

func (c *copier) writeFile(src, dst string, m meta) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFileFrom(in, dst, m)
}

// writeFileFrom creates dst (which must not exist) with r's bytes and m.
func writeFileFrom(r io.Reader, dst string, m meta) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	var err2 error
	if f, ok := r.(*os.File); ok {
		_, err2 = bufcopy.CopyFile(out, f)
	} else {
		_, err2 = bufcopy.Copy(out, r)
	}
	if err2 != nil {
		out.Close()
		return err2
	}
	if err := out.Close(); err != nil {
		return err
	}
	return applyMeta(dst, m, true)
}

func writeSymlink(target, dst string, m meta) error {
	if err := os.Symlink(target, dst); err != nil {
		return err
	}
	return applyMeta(dst, m, false)
}

func writeSpecial(dst string, typ uint32, rdev uint64, m meta) error {
	if err := unix.Mknod(dst, typ|m.mode&0o777, int(rdev)); err != nil {
		return err
	}
	return applyMeta(dst, m, true)
}

// applyMeta sets owner, mode (unless a symlink), extended attributes and
// times on p without following a symlink at p. The owner is set before the
// mode and the attributes because chown clears setuid and file capabilities.
func applyMeta(p string, m meta, setMode bool) error {
	if err := os.Lchown(p, m.uid, m.gid); err != nil {
		return err
	}
	if setMode {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, m.mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if m.xattrsFrom != "" {
		if err := copyXattrs(m.xattrsFrom, p); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(m.atime.UnixNano()), unix.NsecToTimespec(m.mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// copyXattrs copies extended attributes; a file system without them is
// not an error.
func copyXattrs(src, dst string) error {
	names, err := xattr.List(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		val, err := xattr.Get(src, name)
		if err != nil {
			continue // vanished or unreadable attribute
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
