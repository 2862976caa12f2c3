package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestDecompressEachFormat(t *testing.T) {
	plain := bytes.Repeat([]byte("strata layer bytes\n"), 1000)
	var gz, zs, xzb bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(plain)
	xw.Close()
	cases := map[Kind][]byte{None: plain, Gzip: gz.Bytes(), Zstd: zs.Bytes(), Xz: xzb.Bytes()}
	if out, err := exec.Command("sh", "-c", "printf 'strata layer bytes\\n%.0s' $(seq 1000) | bzip2 -c").Output(); err == nil {
		cases[Bzip2] = out
	} else {
		t.Log("bzip2 program missing: bzip2 not checked")
	}
	for kind, data := range cases {
		rc, got, err := Decompress(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || got != kind || !bytes.Equal(b, plain) {
			t.Errorf("%s: detected %s, %d bytes, err %v", kind, got, len(b), err)
		}
	}
}

func TestDecompressShortAndCorrupt(t *testing.T) {
	rc, kind, err := Decompress(bytes.NewReader([]byte("ab")))
	if err != nil || kind != None {
		t.Fatalf("short plain input: %s, %v", kind, err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "ab" {
		t.Errorf("short input read back as %q", b)
	}
	if _, _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0x08, 0, 0})); err == nil {
		t.Error("a truncated gzip header was accepted")
	}
}
