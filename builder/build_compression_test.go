package builder_test

import (
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
)

// compression=zstd stores the layers a build makes in zstd, keeps the
// base image's as they are, and with force-compression recompresses
// those too, their diff IDs unchanged; uncompressed stores plain tars.
func TestBuildCompression(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hello > /h\n"})
	gz, _ := e.mustBuild(dir, builder.Options{})
	base := e.readImage(gz)
	mediaTypes := func(res *builder.Result) ([]string, *image) {
		img := e.readImage(res)
		var mts []string
		for _, l := range img.manifest.Layers {
			mts = append(mts, l.MediaType)
		}
		return mts, img
	}
	for _, tc := range []struct {
		name  string
		c     builder.Compression
		force bool
		want  []string
	}{
		{"zstd", builder.Compression{Type: "zstd"}, false, []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd}},
		{"zstd forced", builder.Compression{Type: "zstd", Level: 9}, true, []string{ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerZstd}},
		{"uncompressed forced", builder.Compression{Type: "uncompressed"}, true, []string{ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh step, so that its layer is made in this compression.
			dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo " + tc.name + " > /h\n"})
			res, _ := e.mustBuild(dir, builder.Options{Compression: tc.c, ForceCompression: tc.force,
				Exports: []exporter.Exporter{exporter.ImageStore{Names: []string{"docker.io/library/c:1"}}}})
			got, img := mediaTypes(res)
			if len(got) != 2 || got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Fatalf("layer media types %v, want %v", got, tc.want)
			}
			if img.config.RootFS.DiffIDs[0] != base.config.RootFS.DiffIDs[0] {
				t.Errorf("the base layer's diff id changed: %s, was %s", img.config.RootFS.DiffIDs[0], base.config.RootFS.DiffIDs[0])
			}
			if got := fileData(img, "/h"); got != tc.name+"\n" {
				t.Errorf("/h = %q", got)
			}
			again, _ := e.mustBuild(dir, builder.Options{Compression: tc.c, ForceCompression: tc.force})
			if again.Manifest.Digest != res.Manifest.Digest {
				t.Errorf("a rebuild gave %s, then %s", res.Manifest.Digest, again.Manifest.Digest)
			}
		})
	}
}
