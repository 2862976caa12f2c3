package ops

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// newTestWorker is a Worker over a fresh store in a temporary directory,
// with the parts source ops use.
func newTestWorker(t *testing.T) *Worker {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	db, err := metadata.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.New(filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Worker{Snapshotter: sn, Content: cs, Records: cache.NewRecords(db), TempDir: tmp}
}

// solve runs v through a solver with the worker's store as its cache.
func solve(t *testing.T, w *Worker, v *llb.Vertex) (*Ref, error) {
	t.Helper()
	s := solver.New(solver.Options{Resolve: w.Resolve, Cache: &CacheStore{Records: w.Records, Snapshotter: w.Snapshotter}})
	r, err := s.Solve(context.Background(), v)
	if err != nil {
		return nil, err
	}
	return refOf(r), nil
}

// fileInfo is one file of a result tree.
type fileInfo struct {
	data     string
	mode     os.FileMode
	uid, gid uint32
	mtime    time.Time
}

// readTree returns every regular file of ref by path, and the list of all
// paths (directories and links included).
func readTree(t *testing.T, w *Worker, ref *Ref) (map[string]fileInfo, []string) {
	t.Helper()
	files := map[string]fileInfo{}
	var all []string
	err := w.withView(context.Background(), ref, func(root string) error {
		return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			all = append(all, rel)
			if !fi.Mode().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			files[rel] = fileInfo{string(b), fi.Mode(), st.Uid, st.Gid, fi.ModTime()}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, all
}

// fileServer serves files by path with a fixed Last-Modified and ETags, and
// counts full (200) answers and not-modified (304) ones per path.
type fileServer struct {
	mu       sync.Mutex
	files    map[string]string
	modTime  time.Time
	headers  map[string]http.Header
	full     map[string]int
	notMod   map[string]int
	failures map[string]int // path -> status to answer with
}

func newFileServer(t *testing.T, files map[string]string) (*fileServer, *httptest.Server) {
	fs := &fileServer{files: files, modTime: time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC),
		headers: map[string]http.Header{}, full: map[string]int{}, notMod: map[string]int{}, failures: map[string]int{}}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, srv
}

func (fs *fileServer) set(p, data string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[p] = data
}

// fail makes p answer with status code; 0 serves it again.
func (fs *fileServer) fail(p string, code int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.failures[p] = code
}

func (fs *fileServer) header(p string, h http.Header) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.headers[p] = h
}

func (fs *fileServer) counts(p string) (full, notModified int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.full[p], fs.notMod[p]
}

func (fs *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if code := fs.failures[r.URL.Path]; code != 0 {
		http.Error(w, "nope", code)
		return
	}
	data, ok := fs.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := `"` + digest.FromString(data).Encoded()[:16] + `"`
	for k, vs := range fs.headers[r.URL.Path] {
		w.Header()[k] = vs
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", fs.modTime.Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == etag {
		fs.notMod[r.URL.Path]++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	fs.full[r.URL.Path]++
	fmt.Fprint(w, data)
}

func httpVertex(url string, dgst digest.Digest, src *llb.HTTPSource) *llb.Vertex {
	if src == nil {
		src = &llb.HTTPSource{}
	}
	return &llb.Vertex{Op: &llb.SourceOp{Source: llb.SourceHTTP, Ref: url, Digest: dgst, HTTP: src}, Meta: llb.Meta{Name: "load " + url}}
}

func TestHTTPWritesFileWithModeMtimeAndName(t *testing.T) {
	w := newTestWorker(t)
	fs, srv := newFileServer(t, map[string]string{"/dl/tool.sh": "#!/bin/sh\necho hi\n", "/get": "payload"})
	fs.header("/get", http.Header{"Content-Disposition": {`attachment; filename="report.csv"`}})

	ref, err := solve(t, w, httpVertex(srv.URL+"/dl/tool.sh", "", &llb.HTTPSource{Filename: "tool.sh"}))
	if err != nil {
		t.Fatal(err)
	}
	files, all := readTree(t, w, ref)
	f, ok := files["tool.sh"]
	if !ok || len(all) != 1 {
		t.Fatalf("tree = %v, want only tool.sh", all)
	}
	if f.data != "#!/bin/sh\necho hi\n" || f.mode != 0o600 || f.uid != 0 || f.gid != 0 {
		t.Errorf("tool.sh = %q mode %o owner %d:%d, want the body, 600, 0:0", f.data, f.mode, f.uid, f.gid)
	}
	if !f.mtime.Equal(fs.modTime) {
		t.Errorf("mtime %v, want Last-Modified %v", f.mtime, fs.modTime)
	}

	// No name in the op: Content-Disposition names the file.
	ref, err = solve(t, w, httpVertex(srv.URL+"/get", "", nil))
	if err != nil {
		t.Fatal(err)
	}
	if files, all := readTree(t, w, ref); files["report.csv"].data != "payload" || len(all) != 1 {
		t.Errorf("tree %v, want report.csv holding the body", all)
	}

	// An explicit mode and owner.
	ref, err = solve(t, w, httpVertex(srv.URL+"/dl/tool.sh", "", &llb.HTTPSource{Filename: "x", Mode: 0o755, UID: 1000, GID: 1001}))
	if err != nil {
		t.Fatal(err)
	}
	if f := func() fileInfo { fs, _ := readTree(t, w, ref); return fs["x"] }(); f.mode != 0o755 || f.uid != 1000 || f.gid != 1001 {
		t.Errorf("x mode %o owner %d:%d, want 755 1000:1001", f.mode, f.uid, f.gid)
	}
}

func TestHTTPUnchangedFileIsNotDownloadedAgain(t *testing.T) {
	w := newTestWorker(t)
	fs, srv := newFileServer(t, map[string]string{"/a.txt": "one"})
	v := func() *llb.Vertex { return httpVertex(srv.URL+"/a.txt", "", &llb.HTTPSource{Filename: "a.txt"}) }
	first, err := solve(t, w, v())
	if err != nil {
		t.Fatal(err)
	}
	second, err := solve(t, w, v())
	if err != nil {
		t.Fatal(err)
	}
	if full, nm := fs.counts("/a.txt"); full != 1 || nm != 1 {
		t.Errorf("server sent the body %d times and 304 %d times, want 1 and 1", full, nm)
	}
	if first.Snapshot != second.Snapshot {
		t.Errorf("unchanged file gave snapshot %s then %s, want a cache hit", first.Snapshot, second.Snapshot)
	}

	fs.set("/a.txt", "two")
	third, err := solve(t, w, v())
	if err != nil {
		t.Fatal(err)
	}
	if third.Snapshot == first.Snapshot {
		t.Error("changed file hit the cache of the old one")
	}
	if files, _ := readTree(t, w, third); files["a.txt"].data != "two" {
		t.Errorf("a.txt = %q after the change, want %q", files["a.txt"].data, "two")
	}
	rec, err := w.Records.HTTP(srv.URL + "/a.txt")
	if err != nil || rec == nil || rec.Digest != digest.FromString("two") || rec.ETag == "" {
		t.Errorf("record %+v, %v: want the digest of the new body and its ETag", rec, err)
	}
}

func TestHTTPChecksum(t *testing.T) {
	w := newTestWorker(t)
	fs, srv := newFileServer(t, map[string]string{"/f": "checked"})
	good := digest.FromString("checked")
	ref, err := solve(t, w, httpVertex(srv.URL+"/f", good, &llb.HTTPSource{Filename: "f"}))
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := readTree(t, w, ref); files["f"].data != "checked" {
		t.Errorf("f = %q", files["f"].data)
	}
	// A matching checksum is a hit without asking the server.
	fs.fail("/f", http.StatusInternalServerError)
	again, err := solve(t, w, httpVertex(srv.URL+"/f", good, &llb.HTTPSource{Filename: "f"}))
	if err != nil {
		t.Fatalf("cached checksum build asked the server: %v", err)
	}
	if again.Snapshot != ref.Snapshot {
		t.Errorf("snapshot %s, want the cached %s", again.Snapshot, ref.Snapshot)
	}
	if full, nm := fs.counts("/f"); full != 1 || nm != 0 {
		t.Errorf("server answered %d bodies and %d 304s, want 1 and 0", full, nm)
	}
	fs.fail("/f", 0)

	// sha512 checksums are verified too.
	d512 := digest.SHA512.FromString("checked")
	if _, err := solve(t, w, httpVertex(srv.URL+"/f", d512, &llb.HTTPSource{Filename: "g"})); err != nil {
		t.Errorf("sha512 checksum: %v", err)
	}

	// Keyed before any download, the file keeps the URL's name even when
	// the server sends another.
	fs.set("/dl/by-url", "named")
	fs.header("/dl/by-url", http.Header{"Content-Disposition": {`attachment; filename="other"`}})
	ref, err = solve(t, w, httpVertex(srv.URL+"/dl/by-url", digest.FromString("named"), nil))
	if err != nil {
		t.Fatal(err)
	}
	if files, all := readTree(t, w, ref); files["by-url"].data != "named" || len(all) != 1 {
		t.Errorf("tree %v, want by-url holding the body", all)
	}

	bad := digest.FromString("something else")
	_, err = solve(t, w, httpVertex(srv.URL+"/f", bad, &llb.HTTPSource{Filename: "f"}))
	want := fmt.Sprintf("digest mismatch for %s/f: got %s, want %s", srv.URL, good, bad)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to say %q", err, want)
	}
}

func TestHTTPErrorsNameURLAndStatus(t *testing.T) {
	w := newTestWorker(t)
	fs, srv := newFileServer(t, map[string]string{"/teapot": "x"})
	fs.fail("/teapot", http.StatusTeapot)
	for p, status := range map[string]string{"/missing": "404 Not Found", "/teapot": "418 I'm a teapot"} {
		_, err := solve(t, w, httpVertex(srv.URL+p, "", nil))
		want := fmt.Sprintf("download %s%s: server answered %s", srv.URL, p, status)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to say %q", err, want)
		}
	}
	_, err := solve(t, w, httpVertex("http://127.0.0.1:1/nothing", "", nil))
	if err == nil || !strings.Contains(err.Error(), "download http://127.0.0.1:1/nothing: ") {
		t.Errorf("error for a closed port = %v", err)
	}
}

func TestDispositionName(t *testing.T) {
	for h, want := range map[string]string{
		`attachment; filename="a.tar.gz"`: "a.tar.gz",
		`attachment; filename=b`:          "b",
		`attachment; filename="../etc/x"`: "",
		`attachment; filename=".."`:       "",
		`inline`:                          "",
		`attachment; filename="a`:         "",
		``:                                "",
	} {
		if got := dispositionName(h); got != want {
			t.Errorf("dispositionName(%q) = %q, want %q", h, got, want)
		}
	}
}
