package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/internal/errdefs"
)

func TestLoadRejects(t *testing.T) {
	good := []byte("blob")
	gd := digest.FromBytes(good)
	tests := []struct {
		name string
		hdrs []tar.Header
		data map[string][]byte
		want string
	}{
		{
			name: "dotdot",
			hdrs: []tar.Header{{Name: "../evil"}},
			want: `"../evil" escapes the archive`,
		},
		{
			name: "dotdot inside",
			hdrs: []tar.Header{{Name: "blobs/../../evil"}},
			want: "escapes the archive",
		},
		{
			name: "absolute",
			hdrs: []tar.Header{{Name: "/etc/passwd"}},
			want: `"/etc/passwd" has an absolute path`,
		},
		{
			name: "symlink out",
			hdrs: []tar.Header{{Name: "a/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../../etc/shadow"}},
			want: "links outside the archive",
		},
		{
			name: "symlink absolute",
			hdrs: []tar.Header{{Name: "layer.tar", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}},
			want: "links to absolute path",
		},
		{
			name: "hardlink out",
			hdrs: []tar.Header{{Name: "layer.tar", Typeflag: tar.TypeLink, Linkname: "../x"}},
			want: "escapes the archive",
		},
		{
			name: "corrupt blob",
			hdrs: []tar.Header{{Name: "blobs/sha256/" + gd.Encoded()}},
			data: map[string][]byte{"blobs/sha256/" + gd.Encoded(): []byte("blub")},
			want: "digest mismatch",
		},
		{
			name: "bad blob name",
			hdrs: []tar.Header{{Name: "blobs/sha256/xyz"}},
			data: map[string][]byte{"blobs/sha256/xyz": good},
			want: "invalid digest",
		},
		{
			name: "empty archive",
			want: "neither index.json nor manifest.json",
		},
		{
			name: "bad oci-layout",
			hdrs: []tar.Header{{Name: "oci-layout"}, {Name: "index.json"}},
			data: map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"9"}`), "index.json": []byte(`{}`)},
			want: "unsupported oci-layout",
		},
		{
			name: "index names missing blob",
			hdrs: []tar.Header{{Name: "index.json"}},
			data: map[string][]byte{"index.json": []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + gd.String() + `","size":4}]}`)},
			want: gd.String() + ": not found",
		},
		{
			name: "manifest.json names missing file",
			hdrs: []tar.Header{{Name: "manifest.json"}},
			data: map[string][]byte{"manifest.json": []byte(`[{"Config":"c.json","Layers":[]}]`)},
			want: `archive has no file "c.json"`,
		},
		{
			name: "link loop",
			hdrs: []tar.Header{
				{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "b"},
				{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "a"},
				{Name: "manifest.json"},
			},
			data: map[string][]byte{"manifest.json": []byte(`[{"Config":"a","Layers":[]}]`)},
			want: "too many links",
		},
		{
			name: "bad tag",
			hdrs: []tar.Header{{Name: "c.json"}, {Name: "manifest.json"}},
			data: map[string][]byte{"c.json": []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`), "manifest.json": []byte(`[{"Config":"c.json","RepoTags":["UPPER:1"],"Layers":[]}]`)},
			want: "must be lowercase",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newContent(t)
			_, err := Load(context.Background(), bytes.NewReader(tarWithData(t, tt.hdrs, tt.data)), cs, newImages(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load err = %v, want %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "load: ") {
				t.Errorf("error %q does not say it comes from load", err)
			}
			if tt.name == "corrupt blob" {
				if _, err := cs.Info(context.Background(), gd); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("corrupt blob landed in the store: %v", err)
				}
			}
		})
	}
}

func TestLoadTruncatedArchive(t *testing.T) {
	ctx := context.Background()
	cs := newContent(t)
	desc := testImage(t, cs, "x", baseFiles, topFiles)
	var buf bytes.Buffer
	if _, err := (OCIArchive{W: &buf}).Export(ctx, Source{Content: cs, Manifest: desc}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{100, 1000, buf.Len() / 2} {
		cs2 := newContent(t)
		if _, err := Load(ctx, bytes.NewReader(buf.Bytes()[:n]), cs2, nil); err == nil {
			t.Errorf("Load of archive cut at %d bytes succeeded", n)
		}
		count := 0
		cs2.Walk(ctx, func(content.Info) error { count++; return nil })
		if count > 4 {
			t.Errorf("more blobs than the image has after a truncated load: %d", count)
		}
	}
}

func TestLoadRejectsSparseEntries(t *testing.T) {
	// A PAX 1.0 sparse entry claiming a terabyte of holes in a few bytes.
	// archive/tar does not write these, so the headers are patched by hand.
	records := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "big"}, {"GNU.sparse.realsize", "1099511627776"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		if len(rec)+len(strconv.Itoa(n)) != n {
			n++
		}
		records += strconv.Itoa(n) + rec
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "pax", Typeflag: tar.TypeReg, Size: int64(len(records))})
	io.WriteString(tw, records)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 512})
	tw.Write(append([]byte("0\n"), make([]byte, 510)...)) // a sparse map with no data
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	hdr, err := tar.NewReader(bytes.NewReader(b)).Next()
	if err != nil || hdr.Size != 1<<40 {
		t.Fatalf("crafted archive does not read as sparse: %+v, %v", hdr, err)
	}
	_, err = Load(context.Background(), bytes.NewReader(b), newContent(t), nil)
	if err == nil || !strings.Contains(err.Error(), `"big" is a sparse file`) {
		t.Fatalf("Load of sparse entry = %v", err)
	}
}
