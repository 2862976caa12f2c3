package local

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/strata-build/strata/internal/compression"
)

// ExtractTar unpacks a build context sent as a tar stream (`strata build -`),
// plain or compressed with gzip, bzip2, xz or zstd, into the existing
// directory dir. Every entry is written through an os.Root on dir: names
// with "..", absolute names and symlinks pointing anywhere are all kept
// inside dir, and an entry that would leave it is an error. Regular files,
// directories, symlinks and hard links are written with their modes and
// modification times; owners are not kept (the build context's files
// belong to 0:0 in the image).
func ExtractTar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open context dir: %w", err)
	}
	defer root.Close()
	dec, err := decompressStream(r)
	if err != nil {
		return err
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	type dirTime struct {
		name  string
		mtime time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read context tar: %w", err)
		}
		name := Clean(hdr.Name)
		if name == "." {
			continue
		}
		if err := extractEntry(root, tr, hdr, name); err != nil {
			return fmt.Errorf("extract %s from the context tar: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{name, hdr.ModTime})
		}
	}
	// Directory times last: writing their contents changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chtimes(dirs[i].name, dirs[i].mtime, dirs[i].mtime); err != nil {
			return fmt.Errorf("set times of %s: %w", dirs[i].name, err)
		}
	}
	return nil
}

// extractEntry writes one tar entry at the clean relative name.
func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Typeflag != tar.TypeDir {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(name, mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return root.Chmod(name, mode)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := root.Chmod(name, mode); err != nil {
			return err
		}
		return root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		return root.Link(Clean(hdr.Linkname), name)
	default:
		return nil // devices and fifos have no place in a build context
	}
}

// decompressStream returns the uncompressed stream of r.
func decompressStream(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := compression.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("read context: %w", err)
	}
	return rc, nil
}

// IsTar reports whether data, after decompression, starts with a tar
// header. `strata build -` uses it to tell a context tar from a bare
// Dockerfile on stdin, as docker build does.
func IsTar(data []byte) bool {
	dec, err := decompressStream(bytes.NewReader(data))
	if err != nil {
		return false
	}
	defer dec.Close()
	block := make([]byte, 512)
	if _, err := io.ReadFull(dec, block); err != nil {
		return false
	}
	field := strings.TrimRight(strings.TrimSpace(string(block[148:156])), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var sum int64
	for i, b := range block {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += int64(b)
	}
	return sum == want
}
