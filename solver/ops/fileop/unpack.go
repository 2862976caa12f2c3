package fileop

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/strata-build/strata/internal/compression"

	"github.com/strata-build/strata/context/local"
	"golang.org/x/sys/unix"
)

// openArchive opens p and returns a reader of its tar stream when p is a
// tar archive (plain or compressed); ok is false for any other file.
func openArchive(p string) (r io.ReadCloser, ok bool, err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, false, err
	}
	dec, _, err := compression.Decompress(f)
	if err != nil {
		f.Close()
		return nil, false, nil // not a valid compressed stream: a plain file
	}
	tr := bufio.NewReaderSize(dec, 1024)
	block, _ := tr.Peek(512)
	if !isTarHeader(block) {
		dec.Close()
		f.Close()
		return nil, false, nil
	}
	return &archiveReader{Reader: tr, closers: []io.Closer{dec, f}}, true, nil
}

type archiveReader struct {
	io.Reader
	closers []io.Closer
}

func (a *archiveReader) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// isTarHeader reports whether block is a tar header with a valid checksum.
func isTarHeader(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	field := strings.TrimRight(strings.TrimSpace(string(block[148:156])), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var sum int64
	for i, b := range block[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += int64(b)
	}
	return sum == want
}

// unpack extracts the Match into destHost when it is a tar archive and
// reports whether it did.
func (c *copier) unpack(m *local.Match, destHost string) (bool, error) {
	r, ok, err := openArchive(m.Host)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", m.Path, err)
	}
	if !ok {
		return false, nil
	}
	defer r.Close()
	if err := c.mkdirAll(destHost, true); err != nil {
		return false, err
	}
	base := local.RelTo(c.root, destHost)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read archive %s: %w", m.Path, err)
		}
		if err := c.extract(tr, hdr, base); err != nil {
			return false, fmt.Errorf("extract %s from %s: %w", hdr.Name, m.Path, err)
		}
	}
}

// extract writes one tar entry below the destination-relative dir base.
func (c *copier) extract(tr *tar.Reader, hdr *tar.Header, base string) error {
	name := local.Clean(hdr.Name)
	if name == "." {
		return nil
	}
	rel := path.Join(base, name)
	parent, err := local.Resolve(c.root, path.Dir(rel))
	if err != nil {
		return err
	}
	if err := c.mkdirAll(parent, true); err != nil {
		return err
	}
	host, err := local.ResolveParent(c.root, rel)
	if err != nil {
		return err
	}
	m := meta{uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode) & 0o7777,
		atime: hdr.ModTime, mtime: hdr.ModTime}
	if c.owner != nil {
		m.uid, m.gid = c.owner.uid, c.owner.gid
	}
	if c.a.Timestamp != nil {
		m.atime, m.mtime = *c.a.Timestamp, *c.a.Timestamp
	}
	if hdr.Typeflag == tar.TypeDir {
		return c.extractDir(host, m)
	}
	if err := c.clear(host); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		err = writeFileFrom(tr, host, m)
	case tar.TypeSymlink:
		err = writeSymlink(hdr.Linkname, host, m)
	case tar.TypeLink:
		var target string
		target, err = local.ResolveParent(c.root, path.Join(base, local.Clean(hdr.Linkname)))
		if err == nil {
			err = os.Link(target, host)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		err = writeSpecial(host, typ, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)), m)
	default:
		return nil // other entry types carry nothing to write
	}
	if err != nil {
		return err
	}
	return setTarXattrs(host, hdr)
}

func (c *copier) extractDir(host string, m meta) error {
	fi, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(host, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		if err := c.clear(host); err != nil {
			return err
		}
		if err := os.Mkdir(host, 0o700); err != nil {
			return err
		}
	}
	c.pending = append(c.pending, dirMeta{host: host, meta: m})
	return nil
}

func setTarXattrs(host string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(host, name, []byte(v), 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}
