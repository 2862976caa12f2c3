package registrytest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PushManifest writes raw, whatever it holds, as a manifest of mediaType
// under repoTag and returns its digest: for manifests no client library
// would make (too large, naming blobs the registry lacks).
func (s *Server) PushManifest(t testing.TB, repoTag, mediaType string, raw []byte) v1.Hash {
	t.Helper()
	repo, tag, ok := strings.Cut(repoTag, ":")
	if !ok {
		t.Fatalf("push manifest %s: no tag", repoTag)
	}
	req, err := http.NewRequest(http.MethodPut, s.srv.URL+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := pushTransport{}.RoundTrip(req)
	if err != nil {
		t.Fatalf("push manifest %s: %v", repoTag, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest %s: %s", repoTag, resp.Status)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// isGet reports whether r is a GET of /v2/<name>/<kind>/<ref> ("blobs" or
// "manifests"), of ref d when d is not empty.
func isGet(r *http.Request, kind, d string) bool {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v2/") {
		return false
	}
	i := strings.LastIndex(r.URL.Path, "/"+kind+"/")
	if i < 0 {
		return false
	}
	ref := r.URL.Path[i+len(kind)+2:]
	return ref != "" && !strings.Contains(ref, "/") && !strings.HasPrefix(ref, "uploads") && (d == "" || ref == d)
}

// RedirectBlobs answers every blob GET with a 307 redirect to the same
// path and query on base ("http://127.0.0.1:PORT"), as registries that
// keep blobs in object storage do.
func RedirectBlobs(base string) Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isGet(r, "blobs", "") {
				next.ServeHTTP(w, r)
				return
			}
			http.Redirect(w, r, strings.TrimSuffix(base, "/")+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		})
	}
}

// EndlessBlob serves blob d with its bytes followed by endless more,
// without a Content-Length, until the client hangs up.
func EndlessBlob(d v1.Hash) Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isGet(r, "blobs", d.String()) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			endless(w, r, rec.Body.Bytes(), 0)
		})
	}
}

// EndlessManifests answers every manifest GET with the start of a JSON
// document followed by endless spaces, without a Content-Length, until the
// client hangs up.
func EndlessManifests() Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isGet(r, "manifests", "") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			endless(w, r, []byte(`{"schemaVersion":2,"layers":[`), ' ')
		})
	}
}

// endless writes head, then fill bytes until a write fails or the request
// ends.
func endless(w http.ResponseWriter, r *http.Request, head []byte, fill byte) {
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{fill}, 32<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// ManifestDigest announces digest d (Docker-Content-Digest) in every
// manifest GET's answer, whatever the manifest's bytes are, as a registry
// serving other content than it claims would.
func ManifestDigest(d string) Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isGet(r, "manifests", "") {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(&digestWriter{ResponseWriter: w, digest: d}, r)
		})
	}
}

// digestWriter replaces Docker-Content-Digest as the headers go out.
type digestWriter struct {
	http.ResponseWriter
	digest      string
	wroteHeader bool
}

func (d *digestWriter) WriteHeader(code int) {
	if d.wroteHeader {
		return
	}
	d.wroteHeader = true
	if code == http.StatusOK {
		d.Header().Set("Docker-Content-Digest", d.digest)
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *digestWriter) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return d.ResponseWriter.Write(b)
}
