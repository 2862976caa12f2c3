// Package mount performs mounts described as data. A Mount is what a
// snapshotter returns (cache/snapshot) and what the sandbox (executor) and
// the op implementations (solver/ops) mount where they want: All mounts a
// list on a target in the calling process's mount namespace, Unmount
// detaches it again, WithTemp does both around a function.
//
// The package imports no other strata package, so both the store and the
// sandbox can speak of mounts without knowing each other.
package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Mount is one filesystem to mount, as data: a snapshotter describes it, the
// caller (the sandbox, a file op) performs it where it wants.
type Mount struct {
	// Type is "overlay", "bind" or another filesystem type ("tmpfs").
	Type   string
	Source string
	// Options are mount(8) options, e.g. "lowerdir=a:b", "upperdir=u",
	// "workdir=w", "ro", "rbind".
	Options []string
	// Dir, when set, is the directory that relative paths in Options (and
	// Source) are relative to. Overlay chains too long for one page of absolute paths
	// use it, as the kernel limits mount data to a page.
	Dir string `json:",omitempty"`
}

// Path resolves a path taken from Options against Dir.
func (m Mount) Path(p string) string {
	if m.Dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.Dir, p)
}

// chdirMu serializes mounts that change the process's working directory.
var chdirMu sync.Mutex

// mountIn performs mount(2) with the working directory at dir.
func mountIn(dir, source, target, fstype string, flags uintptr, data string) error {
	chdirMu.Lock()
	defer chdirMu.Unlock()
	wd, err := os.Open(".")
	if err != nil {
		return err
	}
	defer wd.Close()
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	defer unix.Fchdir(int(wd.Fd()))
	return unix.Mount(source, target, fstype, flags, data)
}

// All mounts ms on target, in order, in the calling process's mount
// namespace.
func All(ms []Mount, target string) error {
	for _, m := range ms {
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	return nil
}

// Mount mounts m on target.
func (m Mount) Mount(target string) error {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw":
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	typ := m.Type
	if typ == "bind" {
		flags |= unix.MS_BIND
		typ = ""
	}
	first := flags
	if flags&unix.MS_BIND != 0 {
		first &^= unix.MS_RDONLY // bind mounts ignore it until remounted
	}
	if m.Type == "overlay" && len(strings.Join(data, ",")) >= maxMountData {
		// One page of mount data holds about 140 lower directories; the
		// new mount API takes them one at a time (kernel 6.8+).
		err := mountOverlayFD(m, data, target, flags)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errNoLowerdirPlus) {
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
	}
	mount := unix.Mount
	if m.Dir != "" {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		target = abs
		mount = func(source, target, fstype string, flags uintptr, data string) error {
			return mountIn(m.Dir, source, target, fstype, flags, data)
		}
	}
	if err := mount(m.Source, target, typ, first, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
	}
	// A read-only bind needs a remount to take effect.
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// maxMountData is the kernel's limit on mount(2) data: one page.
const maxMountData = 4096

// maxOverlayLowers is the kernel's limit on an overlay's lower
// directories (OVL_MAX_STACK).
const maxOverlayLowers = 500

// errNoLowerdirPlus says the kernel lacks fsconfig's "lowerdir+" key.
var errNoLowerdirPlus = errors.New("the kernel has no overlay lowerdir+ (Linux 6.8)")

// mountOverlayFD mounts an overlay through fsopen/fsconfig/fsmount, each
// lower directory its own "lowerdir+" key, so no page limit applies.
func mountOverlayFD(m Mount, data []string, target string, flags uintptr) error {
	var lowers []string
	for _, o := range data {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lowers = append(lowers, strings.Split(v, ":")...)
		}
	}
	if len(lowers) > maxOverlayLowers {
		return fmt.Errorf("%d layers below the filesystem, more than the %d an overlay mount can stack", len(lowers), maxOverlayLowers)
	}
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return errNoLowerdirPlus
	}
	defer unix.Close(fd)
	for _, dir := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", m.Path(dir)); err != nil {
			return errNoLowerdirPlus
		}
	}
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			continue
		case k == "upperdir" || k == "workdir":
			err = unix.FsconfigSetString(fd, k, m.Path(v))
		case hasValue:
			err = unix.FsconfigSetString(fd, k, v)
		default:
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return fmt.Errorf("overlay option %s: %w", o, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	var attr int
	if flags&unix.MS_RDONLY != 0 {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move overlay to %s: %w", target, err)
	}
	return nil
}

// Unmount detaches target and everything mounted below it.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		if err == unix.EINVAL || os.IsNotExist(err) {
			return nil // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// WithTemp mounts ms on a fresh directory under dir, calls fn with its
// path, and unmounts and removes it afterwards.
func WithTemp(dir string, ms []Mount, fn func(root string) error) (err error) {
	root, err := os.MkdirTemp(dir, "mnt-")
	if err != nil {
		return err
	}
	defer func() {
		if uerr := Unmount(root); uerr != nil && err == nil {
			err = uerr
		}
		if rerr := os.Remove(root); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := All(ms, root); err != nil {
		return err
	}
	return fn(root)
}
