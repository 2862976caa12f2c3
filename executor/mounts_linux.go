package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/strata-build/strata/mount"
	"golang.org/x/sys/unix"
)

// Docker's masked and read-only /proc and /sys paths.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	hostDevices   = []string{"null", "zero", "full", "random", "urandom", "tty"}
)

// rootfs mounts the sandbox's filesystems under dir (the future root) and
// records every mount point it had to create, so that the run leaves no
// trace of them in the root.
type rootfs struct {
	dir   string
	stubs *Stubs
}

// setup performs every mount of cfg in the current (private) mount namespace.
func (r *rootfs) setup(cfg *initConfig) error {
	spec := &cfg.Spec
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := mount.All(spec.Root, r.dir); err != nil {
		return fmt.Errorf("mount root: %w", err)
	}
	if err := r.mountProc(); err != nil {
		return err
	}
	if err := r.mountDev(); err != nil {
		return err
	}
	if err := r.mountSys(spec); err != nil {
		return err
	}
	r.mountEtc(cfg)
	mounts := slices.Clone(spec.Mounts)
	slices.SortStableFunc(mounts, func(a, b Mount) int { return depth(a.Dest) - depth(b.Dest) })
	for _, m := range mounts {
		if err := r.mountUser(m); err != nil {
			return err
		}
	}
	if spec.Insecure {
		return nil
	}
	return r.restrictProc()
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// target resolves dest inside the root, creating what is missing: a file
// when file is true, else a directory.
func (r *rootfs) target(dest string, file bool) (string, error) {
	if r.stubs == nil {
		r.stubs = NewStubs(r.dir)
	}
	return r.stubs.Target(dest, file)
}

func (r *rootfs) mount(source, dest, fstype string, flags uintptr, data string, file bool) error {
	p, err := r.target(dest, file)
	if err != nil {
		return err
	}
	if err := unix.Mount(source, p, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype+source, dest, err)
	}
	return nil
}

func (r *rootfs) mountProc() error {
	return r.mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "", false)
}

// mountDev builds a minimal /dev: a few host devices, a private devpts, shm
// and the usual symlinks.
func (r *rootfs) mountDev() error {
	if err := r.mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k", false); err != nil {
		return err
	}
	for _, d := range hostDevices {
		if err := r.mount("/dev/"+d, "/dev/"+d, "", unix.MS_BIND, "", true); err != nil {
			return err
		}
	}
	if err := r.mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", false); err != nil {
		return err
	}
	if err := r.mount("shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k", false); err != nil {
		return err
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(r.dir, "dev", l[1])); err != nil {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// mountSys mounts a read-only /sys: a fresh sysfs in a private network
// namespace, the host's otherwise.
func (r *rootfs) mountSys(spec *Spec) error {
	var ro uintptr = unix.MS_RDONLY
	if spec.Insecure {
		ro = 0
	}
	flags := unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | ro
	if spec.Network != NetworkHost {
		return r.mount("sysfs", "/sys", "sysfs", flags, "", false)
	}
	if err := r.mount("/sys", "/sys", "", unix.MS_BIND|unix.MS_REC, "", false); err != nil {
		return err
	}
	p, _ := securejoin.SecureJoin(r.dir, "/sys")
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return fmt.Errorf("remount /sys: %w", err)
	}
	return nil
}

// mountEtc binds the generated hosts, resolv.conf and hostname over the
// root's, where they exist or can be created (a read-only root gets none).
func (r *rootfs) mountEtc(cfg *initConfig) {
	files := [][2]string{{cfg.Hosts, "/etc/hosts"}, {cfg.Resolv, "/etc/resolv.conf"}, {cfg.Hostname, "/etc/hostname"}}
	for _, f := range files {
		p, err := r.target(f[1], true)
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		_ = unix.Mount(f[0], p, "", unix.MS_BIND, "")
	}
}

// mountUser performs one of the Spec's Mounts.
func (r *rootfs) mountUser(m Mount) error {
	if !filepath.IsAbs(m.Dest) {
		return fmt.Errorf("mount on %q: not an absolute path", m.Dest)
	}
	file := false
	if len(m.Mounts) > 0 && m.Mounts[0].Type == "bind" {
		if st, err := os.Stat(m.Mounts[0].Source); err == nil && !st.IsDir() {
			file = true
		}
	}
	p, err := r.target(m.Dest, file)
	if err != nil {
		return err
	}
	if err := mount.All(m.Mounts, p); err != nil {
		return fmt.Errorf("mount on %s: %w", m.Dest, err)
	}
	return nil
}

// restrictProc hides the kernel interfaces Docker hides and makes the
// writable ones read-only.
func (r *rootfs) restrictProc() error {
	for _, m := range maskedPaths {
		p := filepath.Join(r.dir, m)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", m, err)
		}
	}
	for _, m := range readonlyPaths {
		p := filepath.Join(r.dir, m)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m, err)
		}
		flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
		if err := unix.Mount("", p, "", uintptr(flags), ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m, err)
		}
	}
	return nil
}

// pivot makes dir the root of the mount namespace and drops the old root.
func pivot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("pivot to %s: %w", dir, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot to %s: %w", dir, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// removeStubs takes away the mount points the sandbox created; it runs
// inside the pivoted root.
func (r *rootfs) removeStubs() {
	if r.stubs != nil {
		r.stubs.Remove("/")
	}
}
