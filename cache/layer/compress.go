package layer

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-build/strata/internal/compression"

	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compress gzips the uncompressed layer stream r into w and returns the
// layer's diffID (sha256 of the bytes of r) and the descriptor of the blob
// written to w (sha256, size and application/vnd.oci.image.layer.v1.tar+gzip),
// both computed in the same pass. The gzip stream has no name and no
// timestamp, so the same tar always gives the same blob.
func Compress(r io.Reader, w io.Writer) (diffID digest.Digest, blob ocispec.Descriptor, err error) {
	diffHash, blobHash := sha256.New(), sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, blobHash)}
	zw, err := gzipWriter(cw)
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

func gzipWriter(w io.Writer) (*pgzip.Writer, error) {
	if zw, ok := gzipWriters.Get().(*pgzip.Writer); ok {
		zw.Reset(w)
		return zw, nil
	}
	return pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
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

// decompress returns the uncompressed stream of a layer (gzip, zstd, or
// any other format Docker takes, or plain) and a function releasing the
// decoder.
func decompress(r io.Reader) (io.Reader, func(), error) {
	rc, _, err := compression.Decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("open layer: %w", err)
	}
	return rc, func() { rc.Close() }, nil
}
