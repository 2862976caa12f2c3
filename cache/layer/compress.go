package layer

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-build/strata/internal/bufcopy"
	"github.com/strata-build/strata/internal/compression"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how a layer's tar is stored: "gzip" (the default, also
// for ""), "zstd" or "uncompressed", with a level (0: the format's
// default; zstd takes 1 to 22, gzip 1 to 9).
type Compression struct {
	Type  string
	Level int
}

// Compressions are the Type values, as buildx spells them.
var Compressions = []string{"gzip", "zstd", "uncompressed"}

// IsDefault reports whether c is gzip at its default level.
func (c Compression) IsDefault() bool {
	return (c.Type == "" || c.Type == "gzip") && c.Level == 0
}

// String is c as a record name suffix and in messages: "zstd", "gzip-9".
func (c Compression) String() string {
	t := c.Type
	if t == "" {
		t = "gzip"
	}
	if c.Level != 0 {
		return fmt.Sprintf("%s-%d", t, c.Level)
	}
	return t
}

// Validate checks the type and the level.
func (c Compression) Validate() error {
	switch c.Type {
	case "", "gzip":
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("gzip compression level %d: want 1 to 9", c.Level)
		}
	case "zstd":
		if c.Level < 0 || c.Level > 22 {
			return fmt.Errorf("zstd compression level %d: want 1 to 22", c.Level)
		}
	case "uncompressed":
	default:
		return fmt.Errorf("unknown compression %q (gzip, zstd, uncompressed)", c.Type)
	}
	return nil
}

// Compress gzips the uncompressed layer stream r into w and returns the
// layer's diffID (sha256 of the bytes of r) and the descriptor of the blob
// written to w (sha256, size and application/vnd.oci.image.layer.v1.tar+gzip),
// both computed in the same pass. The gzip stream has no name and no
// timestamp, so the same tar always gives the same blob.
func Compress(r io.Reader, w io.Writer) (diffID digest.Digest, blob ocispec.Descriptor, err error) {
	return CompressWith(r, w, Compression{})
}

// CompressWith is Compress in the compression c; the blob's media type
// says which (tar+gzip, tar+zstd, tar).
func CompressWith(r io.Reader, w io.Writer, c Compression) (diffID digest.Digest, blob ocispec.Descriptor, err error) {
	switch c.Type {
	case "zstd":
		return compressZstd(r, w, c.Level)
	case "uncompressed":
		return storePlain(r, w)
	}
	diffHash, blobHash := sha256.New(), sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, blobHash)}
	level := pgzip.DefaultCompression
	if c.Level != 0 {
		level = c.Level
	}
	zw, err := gzipWriter(cw, level)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	defer gzipWriters.Put(zw)
	zw.ModTime = time.Unix(0, 0) // the zero Time would be written as a garbage date
	if _, err := io.Copy(zw, io.TeeReader(r, diffHash)); err != nil {
		zw.Close()
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	blob = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    digest.NewDigest(digest.SHA256, blobHash),
		Size:      cw.n,
	}
	return digest.NewDigest(digest.SHA256, diffHash), blob, nil
}

// gzipWriters keeps writers, and with them their block buffers (a few
// MiB each), between layers: a build of 300 small layers allocated 900 MB
// of buffers for a fresh writer each.
var gzipWriters sync.Pool

func gzipWriter(w io.Writer, level int) (*pgzip.Writer, error) {
	if level != pgzip.DefaultCompression {
		return pgzip.NewWriterLevel(w, level) // rare: not pooled
	}
	if zw, ok := gzipWriters.Get().(*pgzip.Writer); ok {
		zw.Reset(w)
		return zw, nil
	}
	return pgzip.NewWriterLevel(w, level)
}

// compressZstd is CompressWith for zstd, with frame checksums; the same
// tar gives the same bytes.
func compressZstd(r io.Reader, w io.Writer, level int) (digest.Digest, ocispec.Descriptor, error) {
	diffHash, blobHash := sha256.New(), sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, blobHash)}
	opts := []zstd.EOption{zstd.WithEncoderCRC(true)}
	if level != 0 {
		opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	}
	zw, err := zstd.NewWriter(cw, opts...)
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	if _, err := bufcopy.Copy(zw, io.TeeReader(r, diffHash)); err != nil {
		zw.Close()
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("compress layer: %w", err)
	}
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.NewDigest(digest.SHA256, blobHash), Size: cw.n}
	return digest.NewDigest(digest.SHA256, diffHash), blob, nil
}

// storePlain is CompressWith for an uncompressed layer: the blob is the
// tar, its digest the diff ID.
func storePlain(r io.Reader, w io.Writer) (digest.Digest, ocispec.Descriptor, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	if _, err := bufcopy.Copy(cw, r); err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("store layer: %w", err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	return d, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Decompress returns the uncompressed stream of a layer (gzip, zstd, or
// any other format Docker takes, or plain) and a function releasing the
// decoder.
func Decompress(r io.Reader) (io.Reader, func(), error) {
	rc, _, err := compression.Decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("open layer: %w", err)
	}
	return rc, func() { rc.Close() }, nil
}
