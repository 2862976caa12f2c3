package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/internal/bufcopy"
	"github.com/strata-build/strata/mount"
	"golang.org/x/sys/unix"
)

// Apply unpacks a layer (gzip, zstd or plain tar, told apart by magic bytes)
// into the active snapshot with these mounts and returns its diffID.
//
// Into an overlay upper dir (written directly, nothing is mounted) ".wh.x"
// becomes a 0/0 character device and ".wh..wh..opq" sets
// trusted.overlay.opaque=y; into a bind mount's directory whiteouts delete.
// Entries stay inside the root: absolute names, ".." elements, symlinked
// parents and hard links that would leave it fail with ErrEscape ("layer
// entry %q escapes the root"). Symlinks met on the way are followed as if
// the root were "/". Owners, modes, mtimes, xattrs, hard links and device
// nodes are kept.
func Apply(ctx context.Context, mounts []mount.Mount, r io.Reader) (digest.Digest, error) {
	a := &applier{written: map[string]bool{}}
	if dir, ok := upperDir(mounts); ok {
		a.root, a.overlay = dir, true
	} else if src, ok := bindSource(mounts); ok {
		a.root = src
	} else {
		return "", fmt.Errorf("apply layer: unsupported mounts %v", mounts)
	}
	ur, release, err := Decompress(r)
	if err != nil {
		return "", fmt.Errorf("apply layer: %w", err)
	}
	defer release()
	h := sha256.New()
	tee := io.TeeReader(ur, h)
	tr := tar.NewReader(tee)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("apply layer to %s: read tar: %w", a.root, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return "", fmt.Errorf("apply layer to %s: %w", a.root, err)
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", fmt.Errorf("apply layer to %s: read tar: %w", a.root, err)
	}
	if err := a.finish(); err != nil {
		return "", fmt.Errorf("apply layer to %s: %w", a.root, err)
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

type dirTime struct {
	path  string
	mtime time.Time
}

// applier unpacks the entries of one layer into root.
type applier struct {
	root    string
	overlay bool            // root is an overlay upper dir
	written map[string]bool // entry names of this layer
	dirs    []dirTime       // directory mtimes, set once their contents are in
}

// entryName checks and cleans a tar entry name: relative, no "..".
func entryName(raw string) (string, error) {
	name := strings.TrimSuffix(raw, "/")
	if path.IsAbs(name) {
		return "", fmt.Errorf("layer entry %q %w", raw, ErrEscape)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("layer entry %q %w", raw, ErrEscape)
		}
	}
	return path.Clean(name), nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("layer entry %q: the root is not a directory", hdr.Name)
		}
		return a.setMeta(a.root, hdr)
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == opaqueMarker:
		return a.opaque(hdr.Name, dir)
	case strings.HasPrefix(base, whiteoutPrefix):
		return a.whiteout(hdr.Name, dir, strings.TrimPrefix(base, whiteoutPrefix))
	}
	parent, err := a.resolveDir(hdr.Name, dir, true)
	if err != nil {
		return err
	}
	a.written[name] = true
	target := filepath.Join(parent, base)
	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(hdr, target)
	}
	if err := a.create(hdr, target, r); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return a.setMeta(target, hdr)
}

// create makes the file, directory, symlink or node of hdr at target,
// replacing what is there (a directory stays when a directory comes).
func (a *applier) create(hdr *tar.Header, target string, r io.Reader) error {
	fi, err := os.Lstat(target)
	exists := err == nil
	if exists && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		exists = false
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			return os.Mkdir(target, 0o700)
		}
		return nil
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := bufcopy.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		return unix.Mknod(target, mode|uint32(hdr.Mode&0o7777), int(dev))
	}
	return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
}

// setMeta gives path the owner, mode, xattrs and mtime of hdr (a
// directory's mtime is set last, in finish).
func (a *applier) setMeta(p string, hdr *tar.Header) error {
	if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
		}
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
				return fmt.Errorf("layer entry %q: set xattr %s: %w", hdr.Name, name, err)
			}
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTime{p, hdr.ModTime})
		return nil
	}
	return setMtime(p, hdr.ModTime)
}

func setMtime(p string, m time.Time) error {
	ts := unix.NsecToTimespec(m.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", p, err)
	}
	return nil
}

// finish sets directory mtimes, deepest last-written first.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		if err := setMtime(a.dirs[i].path, a.dirs[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) hardlink(hdr *tar.Header, target string) error {
	lname, err := entryName(hdr.Linkname)
	if err != nil || lname == "." {
		return fmt.Errorf("layer entry %q (link to %q) %w", hdr.Name, hdr.Linkname, ErrEscape)
	}
	ldir, lbase := path.Split(lname)
	lparent, err := a.resolveDir(hdr.Name, strings.TrimSuffix(ldir, "/"), false)
	if err != nil {
		return err
	}
	src := filepath.Join(lparent, lbase)
	if _, err := os.Lstat(src); err != nil {
		return fmt.Errorf("layer entry %q: link target %q: %w", hdr.Name, hdr.Linkname, err)
	}
	if err := os.RemoveAll(target); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	if err := os.Link(src, target); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return nil
}

// whiteout hides name in dir: a 0/0 character device in an overlay upper,
// a deletion otherwise.
func (a *applier) whiteout(raw, dir, name string) error {
	if name == "" || name == "." {
		return fmt.Errorf("layer entry %q: empty whiteout", raw)
	}
	parent, err := a.resolveDir(raw, dir, a.overlay)
	if errors.Is(err, os.ErrNotExist) {
		return nil // nothing there to hide
	}
	if err != nil {
		return err
	}
	target := filepath.Join(parent, name)
	if err := os.RemoveAll(target); err != nil {
		return fmt.Errorf("layer entry %q: %w", raw, err)
	}
	if !a.overlay {
		return nil
	}
	if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("layer entry %q: make whiteout: %w", raw, err)
	}
	return nil
}

// opaque hides what the layers below have in dir: an xattr in an overlay
// upper; otherwise the deletion of every child this layer did not write.
func (a *applier) opaque(raw, dir string) error {
	parent, err := a.resolveDir(raw, dir, a.overlay)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if a.overlay {
		if err := unix.Lsetxattr(parent, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("layer entry %q: mark opaque: %w", raw, err)
		}
		return nil
	}
	des, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", raw, err)
	}
	for _, de := range des {
		if a.written[joinName(dir, de.Name())] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(parent, de.Name())); err != nil {
			return fmt.Errorf("layer entry %q: %w", raw, err)
		}
	}
	return nil
}
