package builder_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/builder"
)

// buildImage writes files as a context (with "Dockerfile" among them),
// builds it and reads the image back.
func (e *env) buildImage(files map[string]string, opts builder.Options) *image {
	e.t.Helper()
	res, _ := e.mustBuild(writeContext(e.t, files), opts)
	return e.readImage(res)
}

// buildError builds files and returns the build's error, failing the test
// when the build succeeds.
func (e *env) buildError(files map[string]string, opts builder.Options) error {
	e.t.Helper()
	_, _, err := e.build(writeContext(e.t, files), opts)
	if err == nil {
		e.t.Fatal("build succeeded, want an error")
	}
	return err
}

// want is the expected content, mode bits and owner of one image path.
type want struct {
	data     string
	mode     int64
	uid, gid int
}

// checkFiles asserts the flattened image has each path with its content
// (files only), mode bits and owner.
func checkFiles(t *testing.T, img *image, files map[string]want) {
	t.Helper()
	fs := img.flatten()
	for p, w := range files {
		e, ok := fs[strings.TrimPrefix(p, "/")]
		if !ok {
			t.Errorf("%s is not in the image", p)
			continue
		}
		if e.hdr.Typeflag == tar.TypeReg && string(e.data) != w.data {
			t.Errorf("%s = %q, want %q", p, e.data, w.data)
		}
		if got := e.hdr.Mode & 0o7777; got != w.mode {
			t.Errorf("%s mode %o, want %o", p, got, w.mode)
		}
		if e.hdr.Uid != w.uid || e.hdr.Gid != w.gid {
			t.Errorf("%s owner %d:%d, want %d:%d", p, e.hdr.Uid, e.hdr.Gid, w.uid, w.gid)
		}
	}
}

// checkAbsent asserts none of paths is in the flattened image.
func checkAbsent(t *testing.T, img *image, paths ...string) {
	t.Helper()
	fs := img.flatten()
	for _, p := range paths {
		if _, ok := fs[strings.TrimPrefix(p, "/")]; ok {
			t.Errorf("%s is in the image, want it absent", p)
		}
	}
}

// below lists the flattened image paths under dir, sorted.
func below(img *image, dir string) []string {
	var out []string
	for p := range img.flatten() {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
	}
	sort.Strings(out)
	return out
}

// tarOf makes a tar of name -> content (names ending in / are
// directories), in sorted order.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o640, Uid: 7, Gid: 8, ModTime: time.Unix(1e9, 0), Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o750
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCopySourcesWildcardsAndDestinations(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM busybox
COPY a.txt b.txt /multi/
COPY *.txt /glob/
COPY dir /contents
COPY dir/ /contents-slash/
COPY a.txt /renamed
COPY a.txt /tmp
COPY a.txt /newdir/
COPY dir/sub/?.md /q/
COPY nomatch* /none/
WORKDIR /w
COPY a.txt .
COPY b.txt rel/
`,
		"a.txt": "A", "b.txt": "B", "dir/x": "X", "dir/sub/y.md": "Y", "dir/sub/zz.md": "ZZ",
	}, builder.Options{})
	f := want{mode: 0o644}
	with := func(data string) want { w := f; w.data = data; return w }
	checkFiles(t, img, map[string]want{
		"/multi/a.txt": with("A"), "/multi/b.txt": with("B"),
		"/glob/a.txt": with("A"), "/glob/b.txt": with("B"),
		"/contents/x": with("X"), "/contents/sub/y.md": with("Y"),
		"/contents-slash/x": with("X"), "/contents-slash/sub/zz.md": with("ZZ"),
		"/renamed": with("A"), "/tmp/a.txt": with("A"), "/newdir/a.txt": with("A"),
		"/q/y.md":  with("Y"),
		"/w/a.txt": with("A"), "/w/rel/b.txt": with("B"),
		"/contents": {mode: 0o755}, "/newdir": {mode: 0o755}, "/tmp": {mode: 0o1777},
	})
	checkAbsent(t, img, "/contents/dir", "/q/zz.md", "/none", "/glob/dir")
	hist := img.config.History
	if got := hist[1].CreatedBy; got != "COPY a.txt b.txt /multi/ # buildkit" || hist[1].EmptyLayer || hist[1].Comment != "buildkit.dockerfile.v0" {
		t.Errorf("history of the first COPY: %+v", hist[1])
	}
	if got := strings.Join(below(img, "contents"), " "); got != "sub sub/y.md sub/zz.md x" {
		t.Errorf("/contents holds %q", got)
	}
}

func TestCopyFromStageIndexAndImage(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM busybox AS first
RUN echo one > /one && chown 5:6 /one && chmod 0604 /one

FROM scratch
COPY --from=first /one /by-name
COPY --from=0 /one /by-index
COPY --from=busybox /etc/passwd /by-image
COPY --from=first /one /two/
`,
	}, builder.Options{})
	checkFiles(t, img, map[string]want{
		"/by-name":  {data: "one\n", mode: 0o604, uid: 5, gid: 6},
		"/by-index": {data: "one\n", mode: 0o604, uid: 5, gid: 6},
		"/two/one":  {data: "one\n", mode: 0o604, uid: 5, gid: 6},
		"/by-image": {data: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", mode: 0o644},
		"/two":      {mode: 0o755},
	})
	checkAbsent(t, img, "/bin/busybox")
}

func TestCopyChownAndChmod(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM busybox
COPY --chown=app:extra a /names
COPY --chown=app a /user-only
COPY --chown=1234 a /uid-only
COPY --chown=1234:5678 a /ids
COPY --chown=nobody:0 a /mixed
COPY --chmod=0751 a /octal
COPY --chmod=u+x,g-r,o= a /symbolic
COPY --chmod=a=rX dir /symdir
COPY --chown=app:app --chmod=600 dir /both/
ARG OWNER=app
COPY --chown=${OWNER} a /from-arg
`,
		"a": "a", "dir/f": "f",
	}, builder.Options{})
	checkFiles(t, img, map[string]want{
		"/names":     {data: "a", mode: 0o644, uid: 1000, gid: 1001},
		"/user-only": {data: "a", mode: 0o644, uid: 1000, gid: 1000},
		"/uid-only":  {data: "a", mode: 0o644, uid: 1234, gid: 1234},
		"/ids":       {data: "a", mode: 0o644, uid: 1234, gid: 5678},
		"/mixed":     {data: "a", mode: 0o644, uid: 65534, gid: 0},
		"/octal":     {data: "a", mode: 0o751},
		"/symbolic":  {data: "a", mode: 0o700},
		"/symdir":    {mode: 0o755}, // made like any new destination dir, as BuildKit does
		"/symdir/f":  {data: "f", mode: 0o444},
		"/both/f":    {data: "f", mode: 0o600, uid: 1000, gid: 1000},
		"/from-arg":  {data: "a", mode: 0o644, uid: 1000, gid: 1000},
	})
}

func TestCopyChownUnknownUserFails(t *testing.T) {
	e := newEnv(t)
	err := e.buildError(map[string]string{"Dockerfile": "FROM busybox\nCOPY --chown=ghost a /a\n", "a": "a"}, builder.Options{})
	if !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("error %q does not name the user and the line", err)
	}
}

func TestCopyParentsAndExclude(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM scratch
COPY --parents a/b/c.txt x/y/*.txt /p/
COPY --parents ./src/./pkg/m.go /pivot/
COPY --exclude=*.log --exclude=skip dir/ /ex/
COPY --exclude=sub dir /ex2/
`,
		"a/b/c.txt": "c", "x/y/1.txt": "1", "x/y/2.txt": "2", "x/y/3.md": "3",
		"src/pkg/m.go": "m",
		"dir/keep":     "k", "dir/drop.log": "d", "dir/skip/f": "s", "dir/sub/g.log": "g", "dir/sub/h": "h",
	}, builder.Options{})
	if got := strings.Join(below(img, "p"), " "); got != "a a/b a/b/c.txt x x/y x/y/1.txt x/y/2.txt" {
		t.Errorf("/p holds %q", got)
	}
	if got := strings.Join(below(img, "pivot"), " "); got != "pkg pkg/m.go" {
		t.Errorf("/pivot holds %q", got)
	}
	// Patterns match paths relative to the source, "*" within one name.
	if got := strings.Join(below(img, "ex"), " "); got != "keep sub sub/g.log sub/h" {
		t.Errorf("/ex holds %q", got)
	}
	if got := strings.Join(below(img, "ex2"), " "); got != "drop.log keep skip skip/f" {
		t.Errorf("/ex2 holds %q", got)
	}
}

func TestAddLocalTarIsExtracted(t *testing.T) {
	e := newEnv(t)
	plain := tarOf(t, map[string]string{"t/": "", "t/one": "1"})
	gz := gzipOf(t, tarOf(t, map[string]string{"g/two": "2"}))
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM scratch
ADD plain.tar /x/
ADD archive.bin /y
COPY plain.tar /copied/
ADD --chown=3:4 plain.tar /owned/
ADD notatar.tar /raw/
`,
		"plain.tar": string(plain), "archive.bin": string(gz), "notatar.tar": "just text",
	})
	for _, tool := range []struct{ name, cmd string }{{"bz", "bzip2"}, {"xz", "xz"}} {
		if _, err := os.Stat("/usr/bin/" + tool.cmd); err != nil {
			continue
		}
		compressInto(t, filepath.Join(dir, tool.name+".tar"), tool.cmd, tarOf(t, map[string]string{tool.name + "/f": tool.name}))
		appendLine(t, filepath.Join(dir, "Dockerfile"), "ADD "+tool.name+".tar /"+tool.name+"/\n")
	}
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	checkFiles(t, img, map[string]want{
		"/x/t":              {mode: 0o750, uid: 7, gid: 8},
		"/x/t/one":          {data: "1", mode: 0o640, uid: 7, gid: 8},
		"/y/g/two":          {data: "2", mode: 0o640, uid: 7, gid: 8},
		"/copied/plain.tar": {data: string(plain), mode: 0o644},
		"/owned/t/one":      {data: "1", mode: 0o640, uid: 3, gid: 4},
		"/raw/notatar.tar":  {data: "just text", mode: 0o644},
	})
	for _, name := range []string{"bz", "xz"} {
		if _, err := os.Stat(filepath.Join(dir, name+".tar")); err == nil {
			checkFiles(t, img, map[string]want{"/" + name + "/" + name + "/f": {data: name, mode: 0o640, uid: 7, gid: 8}})
		}
	}
}

// compressInto writes b compressed by the command-line tool cmd to path.
func compressInto(t *testing.T, path, cmd string, b []byte) {
	t.Helper()
	c := exec.Command(cmd, "-c")
	c.Stdin = bytes.NewReader(b)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}
