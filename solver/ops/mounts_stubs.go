package ops

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/strata-build/strata/mount"
	"golang.org/x/sys/unix"
)

// stubs are the mount points a step's root lacks: the sandbox creates them
// to mount over and they must not become part of the step's layer. Parents
// are the deepest existing directories above them, with their times, which
// creating a stub changes.
type stubs struct {
	paths   []string // absolute in the root, deepest first
	parents map[string]unix.Timespec
}

// findStubs mounts root on a temp dir and records which components of each
// dest are missing from it.
func (w *Worker) findStubs(root []mount.Mount, dests []string) (*stubs, error) {
	st := &stubs{parents: map[string]unix.Timespec{}}
	dests = slices.DeleteFunc(slices.Clone(dests), func(d string) bool {
		// The sandbox's /dev is a tmpfs of its own: nothing below it is
		// made in the root.
		return path.Clean("/"+d) == "/dev" || strings.HasPrefix(path.Clean("/"+d), "/dev/")
	})
	if len(dests) == 0 {
		return st, nil
	}
	err := mount.WithTemp(w.TempDir, root, func(dir string) error {
		seen := map[string]bool{}
		for _, d := range dests {
			parent := "/"
			for _, p := range prefixes(d) {
				host, err := securejoin.SecureJoin(dir, p)
				if err != nil {
					return err
				}
				if _, err := os.Lstat(host); err == nil {
					parent = p
					continue
				} else if !errors.Is(err, os.ErrNotExist) {
					return err
				}
				if !seen[p] {
					seen[p] = true
					st.paths = append(st.paths, p)
				}
			}
			if _, ok := st.parents[parent]; ok || parent == d {
				continue
			}
			var s unix.Stat_t
			host, _ := securejoin.SecureJoin(dir, parent)
			if err := unix.Lstat(host, &s); err != nil {
				return err
			}
			st.parents[parent] = s.Mtim
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find mount points: %w", err)
	}
	slices.SortFunc(st.paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return st, nil
}

// removeStubs removes, deepest first, the mount points the root lacked
// before the step, unless the step put something in them, and restores the
// modification times of their parents.
func (w *Worker) removeStubs(root []mount.Mount, st *stubs) error {
	if len(st.paths) == 0 {
		return nil
	}
	err := mount.WithTemp(w.TempDir, root, func(dir string) error {
		for _, p := range st.paths {
			host, err := securejoin.SecureJoin(dir, p)
			if err != nil {
				return err
			}
			fi, err := os.Lstat(host)
			if err != nil {
				continue
			}
			if fi.Mode().IsRegular() && fi.Size() != 0 {
				continue
			}
			if err := os.Remove(host); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
				return err
			}
		}
		for p, mtim := range st.parents {
			host, err := securejoin.SecureJoin(dir, p)
			if err != nil {
				return err
			}
			var cur unix.Stat_t
			if err := unix.Lstat(host, &cur); err != nil || cur.Mtim == mtim {
				continue // gone, or untouched: a utimes would copy it up
			}
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtim}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove mount points: %w", err)
	}
	return nil
}

// prefixes returns "/a", "/a/b", "/a/b/c" for "/a/b/c".
func prefixes(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	var out []string
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}
