package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/strata-build/strata/internal/bufcopy"
	"golang.org/x/sys/unix"
)

type fileID struct{ dev, ino uint64 }

// tarWriter writes normalized layer entries and counts them.
type tarWriter struct {
	tw    *tar.Writer
	epoch *time.Time
	links map[fileID]string // first entry name of each multiply linked file
	n     int
}

func newTarWriter(w io.Writer, opts DiffOptions) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), epoch: opts.SourceDateEpoch, links: map[fileID]string{}}
}

func (t *tarWriter) mtime(ts unix.Timespec) time.Time {
	m := time.Unix(ts.Sec, 0).UTC()
	if t.epoch != nil && m.After(*t.epoch) {
		m = t.epoch.Truncate(time.Second).UTC()
	}
	return m
}

// whiteout writes an empty regular file entry named name (".wh.x" or the
// opaque marker), owned by root, dated 1970 so it is the same every time.
func (t *tarWriter) whiteout(name string) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write whiteout %s: %w", name, err)
	}
	t.n++
	return nil
}

// add writes the file at full as entry name (relative, no trailing slash).
func (t *tarWriter) add(full, name string) error {
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return fmt.Errorf("stat %s: %w", full, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: t.mtime(st.Mtim),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if st.Nlink > 1 {
			id := fileID{uint64(st.Dev), st.Ino}
			if first, ok := t.links[id]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				t.links[id] = name
			}
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("read link %s: %w", full, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets are not layer content
	}
	xa, err := xattrs(full)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(xa) {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+k] = xa[k]
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write entry %s: %w", name, err)
	}
	t.n++
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		return t.copyFile(full, hdr.Size)
	}
	return nil
}

func (t *tarWriter) copyFile(full string, size int64) error {
	f, err := os.Open(full)
	if err != nil {
		return fmt.Errorf("open %s: %w", full, err)
	}
	defer f.Close()
	n, err := bufcopy.Copy(t.tw, io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("copy %s into layer: %w", full, err)
	}
	if n != size {
		return fmt.Errorf("copy %s into layer: file shrank from %d to %d bytes", full, size, n)
	}
	return nil
}

func joinName(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
