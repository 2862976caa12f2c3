package builder_test

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/store"
)

// layerNames lists every entry name of the image's layers after the first
// (the base image's).
func layerNames(img *image) []string {
	var out []string
	for _, l := range img.layers[1:] {
		for _, e := range l {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(e.hdr.Name, "./"), "/"))
		}
	}
	return out
}

// assertNoPaths fails when a layer entry is, or is below, one of paths.
func assertNoPaths(t *testing.T, img *image, paths ...string) {
	t.Helper()
	for _, n := range layerNames(img) {
		for _, p := range paths {
			p = strings.TrimPrefix(p, "/")
			if n == p || strings.HasPrefix(n, p+"/") {
				t.Errorf("layer has %s (mount %s must leave no trace)", n, p)
			}
		}
	}
}

// assertNoMountsLeft fails when something is still mounted in the store.
func assertNoMountsLeft(t *testing.T, st *store.Store) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], st.Root()+"/") {
			t.Errorf("left mounted: %s", f[4])
		}
	}
}

func TestMountCachePersistsAcrossBuildsAndStaysOutOfLayers(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=cache,target=/var/cache/app sh -c 'n=$(cat /var/cache/app/n 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/n; cp /var/cache/app/n /seen'
RUN --mount=type=cache,target=/newdir/deep,mode=0750,uid=1000,gid=1001 stat -c '%a %u %g' /newdir/deep > /cachestat
`})
	for i, want := range []string{"1\n", "2\n", "3\n"} {
		res, _ := e.mustBuild(dir, builder.Options{NoCache: i > 0})
		img := e.readImage(res)
		if got := fileData(img, "/seen"); got != want {
			t.Fatalf("build %d: the cache held %q, want %q", i+1, got, want)
		}
		if got := fileData(img, "/cachestat"); got != "750 1000 1001\n" {
			t.Errorf("cache dir mode and owner %q, want 750 1000 1001", got)
		}
		assertNoPaths(t, img, "/var/cache", "/newdir")
		// /var existed: it keeps the base image's time although the step
		// made (and the build removed) a mount point in it.
		if v := img.file(t, "/var"); v.hdr.ModTime.Unix() != 0 {
			t.Errorf("/var mtime %v, want the base image's", v.hdr.ModTime)
		}
	}
	assertNoMountsLeft(t, e.store)
}

func TestMountCacheFromSourceReadonlyAndSharing(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{"Dockerfile": `FROM busybox AS seed
RUN mkdir -p /src/sub && echo seeded > /src/sub/file
FROM busybox
RUN --mount=type=cache,id=seeded,from=seed,source=/src/sub,target=/c cat /c/file > /got && echo more > /c/added
RUN --mount=type=cache,id=seeded,target=/c,readonly ls /c > /list; (touch /c/x 2>/dev/null && echo writable || echo readonly) > /ro
RUN --mount=type=cache,id=priv,sharing=private,target=/p sh -c 'echo p >> /p/f; cat /p/f > /priv'
RUN --mount=type=cache,id=lk,sharing=locked,target=/l sh -c 'echo l >> /l/f; cat /l/f > /locked'
`}, builder.Options{})
	for p, w := range map[string]string{
		"/got": "seeded\n", "/list": "added\nfile\n", "/ro": "readonly\n", "/priv": "p\n", "/locked": "l\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	assertNoPaths(t, img, "/c", "/p", "/l")
}

func TestMountBindFromStageImageAndContext(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"ctxdir/a": "context-a\n",
		"Dockerfile": `FROM busybox AS stage
RUN mkdir -p /out/dir && echo from-stage > /out/dir/f
FROM busybox
RUN --mount=type=bind,from=stage,source=/out/dir,target=/m cat /m/f > /got-stage; (touch /m/x 2>/dev/null && echo writable || echo readonly) > /stage-ro
RUN --mount=type=bind,from=stage,source=out/dir,target=/m,rw sh -c 'echo x > /m/written && cat /m/written > /got-rw'
RUN --mount=type=bind,from=stage,source=/out/dir,target=/m ls /m > /after-rw
RUN --mount=type=bind,from=stage,target=/whole cat /whole/out/dir/f > /got-whole
RUN --mount=type=bind,source=ctxdir,target=/ctx cat /ctx/a > /got-ctx; (touch /ctx/new 2>/dev/null && echo writable || echo readonly) > /ctx-ro
RUN --mount=type=bind,source=ctxdir,target=/ctx,rw sh -c 'echo changed > /ctx/a && cat /ctx/a > /got-ctx-rw'
RUN --mount=type=bind,source=ctxdir/a,target=/deep/file.txt cat /deep/file.txt > /got-file
RUN --mount=type=bind,from=busybox,source=/etc/passwd,target=/pw head -n 1 /pw > /got-image
`})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	for p, w := range map[string]string{
		"/got-stage": "from-stage\n", "/stage-ro": "readonly\n", "/got-rw": "x\n", "/after-rw": "f\n",
		"/got-whole": "from-stage\n", "/got-ctx": "context-a\n", "/ctx-ro": "readonly\n",
		"/got-ctx-rw": "changed\n", "/got-file": "context-a\n", "/got-image": "root:x:0:0:root:/root:/bin/sh\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	assertNoPaths(t, img, "/m", "/whole", "/ctx", "/deep", "/pw")
	if b, _ := os.ReadFile(filepath.Join(dir, "ctxdir", "a")); string(b) != "context-a\n" {
		t.Errorf("a rw bind wrote to the context: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "ctxdir", "new")); err == nil {
		t.Error("a read-only bind let the step write to the context")
	}
	assertNoMountsLeft(t, e.store)
}

func TestMountBindMissingSourceFails(t *testing.T) {
	e := newEnv(t)
	err := e.buildError(map[string]string{"Dockerfile": `FROM busybox AS stage
RUN mkdir /out
FROM busybox
RUN --mount=type=bind,from=stage,source=/nope,target=/m true
`}, builder.Options{})
	if !strings.Contains(err.Error(), "mount source /nope: not found") || !strings.Contains(err.Error(), "Dockerfile:4") {
		t.Errorf("error %q does not name the missing source and the line", err)
	}
	assertNoMountsLeft(t, e.store)
}

func TestMountsUnderRunc(t *testing.T) {
	e := newEnv(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	dir := writeContext(t, map[string]string{"ctxdir/a": "context-a\n", "Dockerfile": `FROM busybox AS stage
RUN mkdir -p /out/dir && echo from-stage > /out/dir/f
FROM busybox
RUN --mount=type=cache,target=/var/cache/app sh -c 'echo run >> /var/cache/app/log; cat /var/cache/app/log > /seen'
RUN --mount=type=bind,from=stage,source=/out/dir,target=/m --mount=type=bind,source=ctxdir,target=/ctx cat /m/f /ctx/a > /binds
RUN --mount=type=secret,id=tok,target=/deep/tok cat /deep/tok | wc -c > /toklen
`})
	opts := builder.Options{Runtime: "runc", Secrets: map[string][]byte{"tok": []byte("12345")}}
	for i, want := range []string{"run\n", "run\nrun\n"} {
		opts.NoCache = i > 0
		res, _ := e.mustBuild(dir, opts)
		img := e.readImage(res)
		for p, w := range map[string]string{"/seen": want, "/binds": "from-stage\ncontext-a\n", "/toklen": "5\n"} {
			if got := fileData(img, p); got != w {
				t.Errorf("build %d: %s = %q, want %q", i+1, p, got, w)
			}
		}
		assertNoPaths(t, img, "/var/cache", "/m", "/ctx", "/deep")
	}
	assertNoMountsLeft(t, e.store)
}

func TestMountsOnExistingDirsLeaveLayersExact(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=tmpfs,target=/tmp echo x > /tmp/y && echo ok > /tmpfs-ok
RUN <<EOF
#!/bin/sh
echo heredoc > /heredoc
EOF
RUN --mount=type=cache,target=/var sh -c 'echo v > /var/v; echo ok > /cache-ok'
`}, builder.Options{})
	want := [][]string{{"tmpfs-ok"}, {"heredoc"}, {"cache-ok"}}
	if len(img.layers) != 1+len(want) {
		t.Fatalf("%d layers, want %d", len(img.layers), 1+len(want))
	}
	for i, w := range want {
		var got []string
		for _, en := range img.layers[i+1] {
			name := strings.TrimSuffix(strings.TrimPrefix(en.hdr.Name, "./"), "/")
			if name == "etc" && en.hdr.Typeflag == tar.TypeDir {
				continue // the sandbox's own /etc/hosts mount point, not a RUN --mount
			}
			got = append(got, name)
		}
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("layer %d has %v, want exactly %v", i+1, got, w)
		}
	}
}
