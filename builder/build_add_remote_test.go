package builder_test

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
)

// remoteFiles serves fixed files with a Last-Modified date and an ETag, and
// counts the bodies it sent per path.
type remoteFiles struct {
	mu      sync.Mutex
	files   map[string]string
	bodies  map[string]int
	modTime time.Time
}

func serveFiles(t *testing.T, files map[string]string) (*remoteFiles, string) {
	t.Helper()
	rf := &remoteFiles{files: files, bodies: map[string]int{}, modTime: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv := httptest.NewServer(rf)
	t.Cleanup(srv.Close)
	return rf, srv.URL
}

func (rf *remoteFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	data, ok := rf.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := `"` + digest.FromString(data).Encoded() + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", rf.modTime.Format(http.TimeFormat))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rf.bodies[r.URL.Path]++
	fmt.Fprint(w, data)
}

func (rf *remoteFiles) sent(p string) int {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	return rf.bodies[p]
}

func TestBuildAddURL(t *testing.T) {
	e := newEnv(t)
	rf, base := serveFiles(t, map[string]string{"/files/tool.sh": "#!/bin/sh\necho tool\n", "/v/data.txt": "data\n"})
	df := fmt.Sprintf(`FROM busybox
ADD %[1]s/files/tool.sh /opt/
ADD %[1]s/v/data.txt /etc/renamed.txt
RUN stat -c '%%a %%u' /opt/tool.sh > /stat && cat /etc/renamed.txt >> /stat
`, base)
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)

	tool := img.file(t, "/opt/tool.sh")
	if string(tool.data) != "#!/bin/sh\necho tool\n" || tool.hdr.Mode&0o7777 != 0o600 || tool.hdr.Uid != 0 {
		t.Errorf("/opt/tool.sh = %q mode %o uid %d, want the body, 600, 0", tool.data, tool.hdr.Mode&0o7777, tool.hdr.Uid)
	}
	if !tool.hdr.ModTime.Equal(rf.modTime) {
		t.Errorf("/opt/tool.sh mtime %v, want the server's Last-Modified %v", tool.hdr.ModTime, rf.modTime)
	}
	if f := img.file(t, "/etc/renamed.txt"); string(f.data) != "data\n" {
		t.Errorf("/etc/renamed.txt = %q", f.data)
	}
	if f := img.file(t, "/stat"); string(f.data) != "600 0\ndata\n" {
		t.Errorf("/stat = %q, want the RUN step to see the added files", f.data)
	}

	// An unchanged file is revalidated, not downloaded, and every step hits.
	again, ev := e.mustBuild(dir, builder.Options{})
	sts := ev.statuses()
	for name, st := range sts {
		if st != progress.Cached {
			t.Errorf("rebuild: %s is %s, want cached", name, st)
		}
	}
	if sts["[internal] load remote file "+base+"/files/tool.sh"] != progress.Cached {
		t.Errorf("rebuild: the download of tool.sh is not reported cached: %v", sts)
	}
	if again.Manifest.Digest != res.Manifest.Digest {
		t.Errorf("rebuild gave another image")
	}
	if n := rf.sent("/files/tool.sh"); n != 1 {
		t.Errorf("server sent tool.sh %d times over two builds, want 1", n)
	}
}

func TestBuildAddURLChecksum(t *testing.T) {
	e := newEnv(t)
	_, base := serveFiles(t, map[string]string{"/a.bin": "pinned"})
	good := digest.FromString("pinned")
	df := fmt.Sprintf("FROM busybox\nADD --checksum=%s %s/a.bin /a.bin\n", good, base)
	res, _ := e.mustBuild(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{})
	if f := e.readImage(res).file(t, "/a.bin"); string(f.data) != "pinned" {
		t.Errorf("/a.bin = %q", f.data)
	}

	bad := digest.FromString("other")
	df = fmt.Sprintf("FROM busybox\nADD --checksum=%s %s/a.bin /a.bin\n", bad, base)
	_, _, err := e.build(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{})
	want := fmt.Sprintf("digest mismatch for %s/a.bin: got %s, want %s", base, good, bad)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to say %q", err, want)
	}
}

func TestBuildAddURLNotFound(t *testing.T) {
	e := newEnv(t)
	_, base := serveFiles(t, map[string]string{})
	df := fmt.Sprintf("FROM busybox\nADD %s/missing.txt /m\n", base)
	_, _, err := e.build(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{})
	want := fmt.Sprintf("download %s/missing.txt: server answered 404 Not Found", base)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to say %q", err, want)
	}
}

// gitServer serves the repositories under root over git's smart HTTP
// protocol (git http-backend as CGI) and returns its base URL.
func gitServer(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skip("needs the git binary (Debian package git)")
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("needs %s (Debian package git)", backend)
	}
	h := &cgi.Handler{Path: backend, Root: "/", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// makeRepo makes root/app.git: commit one, tagged v1, has web/index.html and
// web/app.js; commit two, the tip of main, changes index.html.
func makeRepo(t *testing.T, root string) (one string) {
	t.Helper()
	dir := filepath.Join(root, "app.git")
	gitc := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, data string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitc("init", "-q")
	write("web/index.html", "<h1>one</h1>\n")
	write("web/app.js", "go()\n")
	write("README", "top\n")
	gitc("add", ".")
	gitc("commit", "-q", "-m", "one")
	gitc("tag", "-a", "v1", "-m", "v1")
	one = gitc("rev-parse", "HEAD")
	write("web/index.html", "<h1>two</h1>\n")
	gitc("commit", "-q", "-a", "-m", "two")
	return one
}

func TestBuildAddGit(t *testing.T) {
	e := newEnv(t)
	root := t.TempDir()
	url := gitServer(t, root)
	one := makeRepo(t, root)
	df := fmt.Sprintf(`FROM busybox
ADD %[1]s/app.git#v1:web /srv/
ADD %[1]s/app.git /src/
ADD --keep-git-dir=true %[1]s/app.git#main /kept/
`, url)
	res, _ := e.mustBuild(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{})
	img := e.readImage(res)
	fs := img.flatten()

	var srv []string
	for p := range fs {
		if strings.HasPrefix(p, "srv/") {
			srv = append(srv, p)
		}
	}
	sort.Strings(srv)
	if strings.Join(srv, " ") != "srv/app.js srv/index.html" {
		t.Errorf("/srv holds %v, want the web directory of v1", srv)
	}
	if f := img.file(t, "/srv/index.html"); string(f.data) != "<h1>one</h1>\n" {
		t.Errorf("/srv/index.html = %q, want the v1 version", f.data)
	}
	if f := img.file(t, "/src/web/index.html"); string(f.data) != "<h1>two</h1>\n" {
		t.Errorf("/src/web/index.html = %q, want the tip of main", f.data)
	}
	if _, ok := fs["src/.git"]; ok {
		t.Error("/src/.git exists without --keep-git-dir")
	}
	if _, ok := fs["kept/.git/HEAD"]; !ok {
		t.Error("/kept/.git/HEAD is missing with --keep-git-dir=true")
	}

	// The pinned commit checks; another one fails the build.
	df = fmt.Sprintf("FROM busybox\nADD --checksum=%s %s/app.git#v1 /src/\n", one, url)
	if _, _, err := e.build(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{}); err != nil {
		t.Errorf("ADD --checksum with the tag's commit: %v", err)
	}
	other := strings.Repeat("0", 40)
	df = fmt.Sprintf("FROM busybox\nADD --checksum=%s %s/app.git#v1 /src/\n", other, url)
	_, _, err := e.build(writeContext(t, map[string]string{"Dockerfile": df}), builder.Options{})
	if want := "commit mismatch for " + url + "/app.git: got " + one; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to say %q", err, want)
	}
}
