package local

import (
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// statInfo is the fs.FileInfo of one directory entry, stat'ed relative to
// its open parent directory, so the kernel resolves one name instead of a
// whole path. Sys returns a *syscall.Stat_t, as os.Lstat's does.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (fi *statInfo) Name() string       { return fi.name }
func (fi *statInfo) Size() int64        { return fi.st.Size }
func (fi *statInfo) IsDir() bool        { return fi.st.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (fi *statInfo) Sys() any           { return &fi.st }
func (fi *statInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }

// Mode converts the stat mode the way os.Lstat does.
func (fi *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// lstatAt stats name in the directory open as dirfd without following a
// symlink.
func lstatAt(dirfd int, name string, fi *statInfo) error {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			if err != nil {
				return err
			}
			break
		}
	}
	fi.name = name
	fi.st = syscall.Stat_t{
		Dev: st.Dev, Ino: st.Ino, Nlink: st.Nlink, Mode: st.Mode, Uid: st.Uid, Gid: st.Gid,
		Rdev: st.Rdev, Size: st.Size, Blksize: st.Blksize, Blocks: st.Blocks,
		Atim: syscall.Timespec{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec},
		Mtim: syscall.Timespec{Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec},
		Ctim: syscall.Timespec{Sec: st.Ctim.Sec, Nsec: st.Ctim.Nsec},
	}
	return nil
}

// readlinkAt reads the target of the symlink name in the directory open as
// dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// dirStats are the sorted names of one directory, their stats and, for
// symlinks, their targets.
type dirStats struct {
	names []string
	infos []statInfo
	links []string
}

// statDir lists dir in lexical order and stats every entry relative to the
// open directory, several at a time for a large one: a context walk is
// mostly waiting on stat. Symlink targets are read the same way.
func statDir(dir string) (dirStats, error) {
	f, err := os.Open(dir)
	if err != nil {
		return dirStats{}, fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return dirStats{}, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	fd := int(f.Fd())
	ds := dirStats{names: names, infos: make([]statInfo, len(names))}
	errs := make([]error, len(names))
	stat := func(i int) { errs[i] = lstatAt(fd, names[i], &ds.infos[i]) }
	const workers = 4
	if len(names) < 32 {
		for i := range names {
			stat(i)
		}
	} else {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(names); i += workers {
					stat(i)
				}
			}()
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return dirStats{}, fmt.Errorf("stat %s/%s: %w", dir, names[i], err)
		}
	}
	for i := range ds.infos {
		if ds.infos[i].st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			continue
		}
		if ds.links == nil {
			ds.links = make([]string, len(names))
		}
		if ds.links[i], err = readlinkAt(fd, names[i]); err != nil {
			return dirStats{}, fmt.Errorf("read symlink %s/%s: %w", dir, names[i], err)
		}
	}
	return ds, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}
