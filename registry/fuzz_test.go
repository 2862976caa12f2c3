package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/registry"
)

// FuzzPullManifest serves arbitrary bytes as the manifest of a tag (and of
// every digest) with no blobs behind them: a pull must fail cleanly, never
// panic, loop or tag anything.
func FuzzPullManifest(f *testing.F) {
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":2},"layers":[]}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":10,"platform":{"os":"linux","architecture":"amd64"}}]}`,
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{}}`,
		`{"manifests":null}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), "application/vnd.oci.image.manifest.v1+json")
	}
	for _, ct := range []string{"\x00", "a\x7f", "", "\xff", "x y", ":"} {
		f.Add([]byte(`{}`), ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/v2/":
				w.WriteHeader(http.StatusOK)
			case strings.Contains(r.URL.Path, "/manifests/"):
				if strings.ContainsAny(contentType, "\r\n") {
					contentType = "application/json"
				}
				w.Header().Set("Content-Type", contentType)
				w.Write(body)
			default:
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}`, http.StatusNotFound)
			}
		}))
		defer srv.Close()
		s := newStore(t)
		ref := strings.TrimPrefix(srv.URL, "http://") + "/x:1"
		_, err := s.puller(registry.Options{}).Pull(context.Background(), ref, linuxAMD64)
		if err == nil {
			t.Fatalf("pull of a manifest without blobs succeeded: %q", body)
		}
		if _, err := s.is.Get(context.Background(), ref); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("failed pull left a tag: %v", err)
		}
	})
}
