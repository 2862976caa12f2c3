// Package compression recognizes a compressed stream by its first bytes and
// decompresses it: gzip, bzip2, xz and zstd, the formats Docker accepts for
// layers, ADD archives and build contexts. Everything that reads a stream
// of unknown compression (archives to load, layers to apply, contexts on
// stdin, ADD of a local tar) goes through Decompress.
package compression

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Kind is a compression format.
type Kind int

const (
	None Kind = iota
	Gzip
	Bzip2
	Xz
	Zstd
)

func (k Kind) String() string {
	switch k {
	case Gzip:
		return "gzip"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	case Zstd:
		return "zstd"
	}
	return "none"
}

var magics = []struct {
	kind  Kind
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Bzip2, []byte{'B', 'Z', 'h'}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// Detect names the format whose magic number head starts with.
func Detect(head []byte) Kind {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.kind
		}
	}
	return None
}

// Decompress returns the decompressed stream of r, whatever of the known
// formats it is in (or r itself, buffered), and the format it found.
// Closing the result releases the decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Kind, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, None, err
	}
	kind := Detect(head)
	rc, err := reader(kind, br)
	if err != nil {
		return nil, kind, fmt.Errorf("read %s stream: %w", kind, err)
	}
	return rc, kind, nil
}

func reader(kind Kind, r io.Reader) (io.ReadCloser, error) {
	switch kind {
	case Gzip:
		return pgzip.NewReader(r)
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	case Xz:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(xr), nil
	case Zstd:
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}
