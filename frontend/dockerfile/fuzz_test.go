package dockerfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

// FuzzConvert checks that no Dockerfile makes Convert panic, and that every
// graph it returns is valid.
func FuzzConvert(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/frontend/*.Dockerfile")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("FROM busybox\nRUN --mount=type=cache,target=x,from=0 true\nCOPY --from=0 . .\n"))
	f.Add([]byte("FROM scratch\nONBUILD ONBUILD RUN x\nHEALTHCHECK NONE\n"))
	f.Fuzz(func(t *testing.T, df []byte) {
		res, err := Convert(context.Background(), Options{
			Dockerfile: df,
			Platform:   ocispec.Platform{OS: "linux", Architecture: "amd64"},
			Resolver:   &fakeResolver{},
			BuildArgs:  map[string]string{"HTTP_PROXY": "http://p"},
		})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		if _, err := llb.NewDefinition(res.Root); err != nil {
			t.Fatalf("invalid graph: %v", err)
		}
	})
}
