package local

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

// decompressStream detects the compression of r from its first bytes and
// returns the uncompressed stream.
func decompressStream(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip context: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read zstd context: %w", err)
		}
		return d.IOReadCloser(), nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return xzStream(br)
	}
	return io.NopCloser(br), nil
}

// xzStream decompresses with the xz program; no xz decoder is among the
// project's libraries.
func xzStream(r io.Reader) (io.ReadCloser, error) {
	cmd := exec.Command("xz", "--decompress", "--stdout", "--quiet")
	cmd.Stdin = r
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("decompress xz context: %w", err)
	}
	return &xzReader{ReadCloser: out, cmd: cmd}, nil
}

type xzReader struct {
	io.ReadCloser
	cmd *exec.Cmd
}

func (x *xzReader) Close() error {
	x.ReadCloser.Close()
	_ = x.cmd.Process.Kill() // it may still be writing when the reader stops early
	_ = x.cmd.Wait()
	return nil
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
