package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Stubs are the mount points a run had to create in its root (a missing
// /etc/hosts, a RUN --mount target). Both backends make them with Target
// and take them away with Remove, so a run leaves no trace of them: the
// stubs are removed and the directories they were made in get their times
// back, unless the run changed those directories itself. Paths are kept
// relative to the root, so the sandbox removes them from inside its pivoted
// root and the runc backend from the host.
type Stubs struct {
	root  string
	paths []string                    // "/"-rooted, in creation order
	times map[string][2]unix.Timespec // parent dir -> atime, mtime before the first stub
	after map[string]unix.Timespec    // parent dir -> mtime once its stubs were made
}

// NewStubs starts recording stubs made under root.
func NewStubs(root string) *Stubs {
	return &Stubs{root: root, times: map[string][2]unix.Timespec{}, after: map[string]unix.Timespec{}}
}

// Target resolves dest inside the root (symlinks are followed as if the
// root were /, never out of it), creating what is missing: a file when
// file is true, else a directory. It returns the host path.
func (s *Stubs) Target(dest string, file bool) (string, error) {
	p, err := securejoin.SecureJoin(s.root, dest)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dest, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return p, nil
	}
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return "", err
	}
	parts := strings.Split(rel, string(filepath.Separator))
	cur := s.root
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		if _, err := os.Lstat(cur); err == nil {
			continue
		}
		parent := "/" + filepath.Join(parts[:i]...)
		s.saveTimes(filepath.Dir(cur), parent)
		if file && i == len(parts)-1 {
			f, err := os.OpenFile(cur, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return "", fmt.Errorf("create mount point %s: %w", dest, err)
			}
			f.Close()
		} else if err := os.Mkdir(cur, 0o755); err != nil {
			return "", fmt.Errorf("create mount point %s: %w", dest, err)
		}
		s.paths = append(s.paths, "/"+filepath.Join(parts[:i+1]...))
		var st unix.Stat_t
		if unix.Lstat(filepath.Dir(cur), &st) == nil {
			s.after[parent] = st.Mtim
		}
	}
	return p, nil
}

// saveTimes remembers the times of the directory host (rel inside the
// root) before the first stub is made in it.
func (s *Stubs) saveTimes(host, rel string) {
	if _, ok := s.times[rel]; ok {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(host, &st) == nil {
		s.times[rel] = [2]unix.Timespec{st.Atim, st.Mtim}
	}
}

// Remove unmounts and removes the stubs, deepest first, resolving them
// under root (the root as the caller sees it now), then restores the times
// of the directories they were made in that the run did not change. A file
// stub that now holds data the run wrote is kept.
func (s *Stubs) Remove(root string) {
	resolve := func(p string) (string, bool) {
		h, err := securejoin.SecureJoin(root, p)
		return h, err == nil
	}
	restore := map[string][2]unix.Timespec{}
	for dir, ts := range s.times {
		var st unix.Stat_t
		if h, ok := resolve(dir); ok && unix.Lstat(h, &st) == nil && st.Mtim == s.after[dir] {
			restore[h] = ts
		}
	}
	for i := len(s.paths) - 1; i >= 0; i-- {
		h, ok := resolve(s.paths[i])
		if !ok {
			continue
		}
		for unix.Unmount(h, unix.MNT_DETACH) == nil {
		}
		if st, err := os.Lstat(h); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			continue
		}
		if err := os.Remove(h); err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
	}
	for h, ts := range restore {
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, h, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
}
