package layer

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Every compression gives the same diff ID for one tar, the same blob on
// every run, its media type, and a blob Decompress reads back.
func TestCompressWith(t *testing.T) {
	tarData := make([]byte, 3<<20) // past one encoder block
	if _, err := rand.Read(tarData[:1<<20]); err != nil {
		t.Fatal(err)
	}
	var diffIDs []string
	for _, tc := range []struct {
		c  Compression
		mt string
	}{
		{Compression{}, ocispec.MediaTypeImageLayerGzip},
		{Compression{Type: "gzip", Level: 9}, ocispec.MediaTypeImageLayerGzip},
		{Compression{Type: "zstd"}, ocispec.MediaTypeImageLayerZstd},
		{Compression{Type: "zstd", Level: 19}, ocispec.MediaTypeImageLayerZstd},
		{Compression{Type: "uncompressed"}, ocispec.MediaTypeImageLayer},
	} {
		var first, second bytes.Buffer
		d1, b1, err := CompressWith(bytes.NewReader(tarData), &first, tc.c)
		if err != nil {
			t.Fatalf("%s: %v", tc.c, err)
		}
		d2, b2, err := CompressWith(bytes.NewReader(tarData), &second, tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if d1 != d2 || b1.Digest != b2.Digest || !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Errorf("%s: two runs gave %s and %s", tc.c, b1.Digest, b2.Digest)
		}
		if b1.MediaType != tc.mt || b1.Size != int64(first.Len()) {
			t.Errorf("%s: descriptor %+v, want media type %s", tc.c, b1, tc.mt)
		}
		r, release, err := Decompress(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		release()
		if err != nil || !bytes.Equal(back, tarData) {
			t.Errorf("%s: the blob does not read back (%v)", tc.c, err)
		}
		diffIDs = append(diffIDs, d1.String())
	}
	for _, d := range diffIDs[1:] {
		if d != diffIDs[0] {
			t.Errorf("diff ids differ between compressions: %v", diffIDs)
		}
	}
	if err := (Compression{Type: "brotli"}).Validate(); err == nil {
		t.Error("an unknown compression is valid")
	}
	if err := (Compression{Type: "zstd", Level: 23}).Validate(); err == nil {
		t.Error("zstd level 23 is valid")
	}
}
