//go:build linux

package runc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-build/strata/internal/lockfile"
	"github.com/strata-build/strata/mount"
)

// Each Runtime owns a directory StateDir/runc/NAME (NAME: the process id and
// a random suffix) holding runc's state (root, passed as --root) and the
// bundles of its runs, and holds an exclusive lock on StateDir/runc/NAME.lock
// for as long as the process lives. A directory whose lock nobody holds
// belongs to a killed process: its containers may still run, since runc
// leaves them running when the `runc run` that started them dies.

// claim makes a Runtime's own directory under dir and locks it. The lock
// comes first, and appears already locked: a sweep never sees the directory
// of a live Runtime unlocked.
func claim(dir string) (own string, lock *os.File, err error) {
	own = filepath.Join(dir, fmt.Sprintf("%d-%s", os.Getpid(), randomID()))
	lock, err = lockfile.Create(own + ".lock")
	if err != nil {
		return "", nil, fmt.Errorf("claim %s: %w", own, err)
	}
	if err := os.MkdirAll(filepath.Join(own, "root"), 0o700); err != nil {
		os.Remove(own + ".lock")
		lock.Close()
		return "", nil, fmt.Errorf("claim %s: %w", own, err)
	}
	return own, lock, nil
}

// Sweep kills and deletes the containers of the Runtimes under
// opts.StateDir whose process is gone, unmounts their bundles' roots and
// removes their directories. New calls it; a caller that removes a dead
// process's StateDir calls it first.
func Sweep(opts Options) error {
	bin, err := exec.LookPath(orDefault(opts.Binary, "runc"))
	if err != nil {
		return fmt.Errorf("sweep runc state %s: %w", opts.StateDir, err)
	}
	dir := filepath.Join(opts.StateDir, "runc")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep runc state %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		own := filepath.Join(dir, e.Name())
		lock, dead, err := lockfile.LockIfDead(own + ".lock")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !dead {
			continue // its Runtime is alive
		}
		// Holding the lock keeps other sweeps off it meanwhile.
		if err := sweepOne(bin, own); err != nil {
			errs = append(errs, err)
		}
		if lock != nil {
			lock.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep runc state %s: %w", dir, err)
	}
	return nil
}

// sweepOne deletes the containers, mounts and files of one dead Runtime.
func sweepOne(bin, own string) error {
	root := filepath.Join(own, "root")
	out, err := exec.Command(bin, "--root", root, "list", "-q").Output()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(root); serr == nil {
			return fmt.Errorf("list containers in %s: %w", root, err)
		}
	}
	for _, id := range strings.Fields(string(out)) {
		// delete --force kills the container's processes and waits.
		if msg, err := exec.Command(bin, "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			return fmt.Errorf("delete container %s: %s", id, strings.TrimSpace(string(msg)+" "+err.Error()))
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(own))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := mount.Unmount(m.Mountpoint); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(own); err != nil {
		return err
	}
	if err := os.Remove(own + ".lock"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
