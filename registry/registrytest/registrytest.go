// Package registrytest runs go-containerregistry's in-process registry on
// 127.0.0.1 for tests, and makes the images tests push to it: random ones,
// and busybox images built from the host's busybox-static.
//
// Blobs are kept per repository, as distribution keeps them: a blob pushed to
// one repository is unknown to another until it is uploaded or mounted
// there (POST .../blobs/uploads/?mount=DIGEST&from=REPO).
//
// A Server's handler can be wrapped (Wrap) to misbehave on purpose: corrupt
// a blob (CorruptBlob), send one without end (EndlessBlob), redirect blob
// downloads elsewhere (RedirectBlobs), send endless manifests
// (EndlessManifests) or announce a wrong manifest digest (ManifestDigest),
// demand credentials (BasicAuth), fail or drop blob uploads (FailUploads,
// DropUploads); a Recorder's Wrap counts requests. PushManifest stores any
// bytes as a manifest.
// DockerConfig writes the config.json a client reads credentials from.
// StoreImage and StoreIndex put an image into a content store, and
// StartDistribution runs the real distribution registry.
package registrytest

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/strata-build/strata/internal/testutil"
)

// Wrap changes how a registry answers.
type Wrap func(http.Handler) http.Handler

// Server is a registry listening on 127.0.0.1 until the test ends.
type Server struct {
	// Host is "127.0.0.1:PORT".
	Host string
	srv  *httptest.Server
	// direct is the unwrapped registry, used by Push.
	direct http.Handler
}

// Start runs a registry whose handler is wrapped by wraps, outermost last.
func Start(t testing.TB, wraps ...Wrap) *Server {
	t.Helper()
	reg := newRepoBlobs().handler(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	var h http.Handler = reg
	for _, w := range wraps {
		h = w(h)
	}
	s := &Server{direct: reg}
	// Pushes bypass the wrappers (no auth, no corruption) through a header
	// only this process knows.
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(pushHeader) != "" {
			reg.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.Host = strings.TrimPrefix(s.srv.URL, "http://")
	return s
}

const pushHeader = "X-Registrytest-Push"

// pushTransport marks requests so they reach the registry unwrapped.
type pushTransport struct{}

func (pushTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(pushHeader, "1")
	return http.DefaultTransport.RoundTrip(r)
}

// Ref is the reference of repoTag ("busybox:latest") in this registry.
func (s *Server) Ref(repoTag string) string { return s.Host + "/" + repoTag }

// Close stops the registry: later requests are refused.
func (s *Server) Close() { s.srv.Close() }

// Push writes img under repoTag and returns its manifest digest.
func (s *Server) Push(t testing.TB, repoTag string, img v1.Image) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(s.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(pushTransport{})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex writes idx and its images under repoTag and returns its digest.
func (s *Server) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(s.Ref(repoTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(pushTransport{})); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Platform is the platform the tests build for: linux on this machine's
// architecture.
func Platform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// BusyboxImage is a busybox root filesystem layer (see
// testutil.BusyboxRootfs) for platform, plus one layer holding files
// (path -> content) when files is not empty.
func BusyboxImage(t testing.TB, platform v1.Platform, files map[string]string) v1.Image {
	t.Helper()
	img := AppendFiles(t, empty.Image, testutil.BusyboxRootfs(t))
	if len(files) > 0 {
		img = AppendFiles(t, img, FilesTar(t, files))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = platform.OS, platform.Architecture, platform.Variant
	cfg.Config.Cmd = []string{"sh"}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// AppendFiles adds the tar archive tarData as a gzip layer of img.
func AppendFiles(t testing.TB, img v1.Image, tarData []byte) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarData)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "registrytest layer"}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// PlatformImage is one entry of an index.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// Index makes an index of entries, in order, each marked with its platform.
func Index(entries ...PlatformImage) v1.ImageIndex {
	idx := v1.ImageIndex(empty.Index)
	for _, e := range entries {
		p := e.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: e.Image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx
}

// FilesTar is a tar archive of regular files (path -> content, mode 0644,
// owned by root, mtime 0) in sorted order, with their parent directories.
func FilesTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, strings.TrimPrefix(p, "/"))
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		data := files[p]
		if _, ok := files[p]; !ok {
			data = files["/"+p]
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// CorruptBlob serves every blob d with one byte flipped and its length
// unchanged, as a broken or malicious registry would.
func CorruptBlob(d v1.Hash) Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 0 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	}
}

// BasicAuth answers 401 with a Basic challenge to every request without
// user and password.
func BasicAuth(user, password string) Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// DockerConfig writes a docker config.json holding user and password for
// host into a temporary directory, points DOCKER_CONFIG at it for the rest
// of the test, and returns the directory.
func DockerConfig(t *testing.T, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	b, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	return dir
}
