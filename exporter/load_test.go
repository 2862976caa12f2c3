package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/cache/content"
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
				if _, err := cs.Info(context.Background(), gd); !errors.Is(err, content.ErrNotFound) {
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
