package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Mount is one filesystem to mount, as data: the snapshotter describes, the
// caller (the sandbox, a file op) performs it where it wants.
type Mount struct {
	// Type is "overlay" or "bind".
	Type   string
	Source string
	// Options are mount(8) options, e.g. "lowerdir=a:b", "upperdir=u",
	// "workdir=w", "ro", "rbind".
	Options []string
	// Dir, when set, is the directory that relative paths in Options are
	// relative to. Overlay chains too long for one page of absolute paths
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

// MountAll mounts ms on target, in order, in the calling process's mount
// namespace.
func MountAll(ms []Mount, target string) error {
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

// WithTempMount mounts ms on a fresh directory under dir, calls fn with its
// path, and unmounts and removes it afterwards.
func WithTempMount(dir string, ms []Mount, fn func(root string) error) (err error) {
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
	if err := MountAll(ms, root); err != nil {
		return err
	}
	return fn(root)
}

// DiffMounts turns the read-only view of a committed overlay snapshot into
// a mount whose upperdir is the snapshot's own directory (the first
// lowerdir), which holds exactly its diff; a differ reads only that
// directory. Other mounts (a bind of a snapshot without parent, the naive
// snapshotter's) are returned as they are.
func DiffMounts(view []Mount) []Mount {
	if len(view) != 1 || view[0].Type != "overlay" {
		return view
	}
	for _, o := range view[0].Options {
		if strings.HasPrefix(o, "upperdir=") {
			return view
		}
	}
	for _, o := range view[0].Options {
		if dirs, ok := strings.CutPrefix(o, "lowerdir="); ok {
			first, rest, _ := strings.Cut(dirs, ":")
			opts := []string{"upperdir=" + first}
			if rest != "" {
				opts = append(opts, "lowerdir="+rest)
			}
			return []Mount{{Type: "overlay", Source: "overlay", Options: opts, Dir: view[0].Dir}}
		}
	}
	return view
}
