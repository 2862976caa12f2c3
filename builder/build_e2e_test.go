package builder_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/store"
)

const twoStage = `FROM busybox AS build
WORKDIR /src
COPY a.txt b.txt ./
RUN cat a.txt b.txt > /joined && echo built >> /joined
RUN mkdir -p /dist && cp /joined /dist/out && chmod 0600 /dist/out && chown 1000:1001 /dist/out

FROM busybox
LABEL stage=final
ENV GREETING=hi
COPY --from=build /dist/ /app/
USER app
WORKDIR /app
EXPOSE 8080/tcp
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out"]
`

func TestBuildTwoStageImage(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": twoStage, "a.txt": "alpha\n", "b.txt": "beta\n"})
	res, _ := e.mustBuild(dir, builder.Options{Tags: []string{"two:latest"}, Exports: []exporter.Exporter{exporter.ImageStore{}}})
	img := e.readImage(res)

	out := img.file(t, "/app/out")
	if got := string(out.data); got != "alpha\nbeta\nbuilt\n" {
		t.Errorf("/app/out = %q", got)
	}
	if out.hdr.Mode&0o7777 != 0o600 || out.hdr.Uid != 1000 || out.hdr.Gid != 1001 {
		t.Errorf("/app/out mode %o owner %d:%d, want 600 1000:1001", out.hdr.Mode&0o7777, out.hdr.Uid, out.hdr.Gid)
	}
	if _, ok := img.flatten()["joined"]; ok {
		t.Error("a file of the build stage leaked into the final image")
	}
	if _, ok := img.flatten()["bin/busybox"]; !ok {
		t.Error("base image files are missing")
	}
	cfg := img.config.Config
	if cfg.User != "app" || cfg.WorkingDir != "/app" || cfg.Labels["stage"] != "final" {
		t.Errorf("config user %q workdir %q labels %v", cfg.User, cfg.WorkingDir, cfg.Labels)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/bin/cat" || strings.Join(cfg.Cmd, " ") != "/app/out" {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", cfg.ExposedPorts)
	}
	if !contains(cfg.Env, "GREETING=hi") || !containsPrefix(cfg.Env, "PATH=") {
		t.Errorf("env %v", cfg.Env)
	}
	// History: the imported base layer, then one entry per instruction;
	// layer-making entries match the layers one to one.
	var nonEmpty int
	for _, h := range img.config.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(img.manifest.Layers) || len(img.config.RootFS.DiffIDs) != len(img.manifest.Layers) {
		t.Errorf("%d non-empty history entries, %d layers, %d diff ids", nonEmpty, len(img.manifest.Layers), len(img.config.RootFS.DiffIDs))
	}
	var createdBy []string
	for _, h := range img.config.History {
		createdBy = append(createdBy, h.CreatedBy)
	}
	joined := strings.Join(createdBy, "\n")
	for _, want := range []string{"LABEL stage=final", "ENV GREETING=hi", "COPY /dist/ /app/", "USER app", "WORKDIR /app", "EXPOSE [8080/tcp]", "CMD [\"/app/out\"]"} {
		if !strings.Contains(joined, want) {
			t.Errorf("history lacks %q:\n%s", want, joined)
		}
	}
	if _, err := e.store.Image(context.Background(), "two:latest"); err != nil {
		t.Errorf("tag not in store: %v", err)
	}
}

func TestRebuildIsCachedAndEditReRunsOnlyAfterCopy(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox
RUN echo one > /one
COPY a.txt /a.txt
RUN cat /a.txt > /copy
RUN echo two > /two
`
	dir := writeContext(t, map[string]string{"Dockerfile": df, "a.txt": "v1\n"})
	first, ev1 := e.mustBuild(dir, builder.Options{})
	for name, st := range ev1.statuses() {
		if strings.Contains(name, "RUN") && st != progress.Done {
			t.Errorf("first build: %s is %s", name, st)
		}
	}
	second, ev2 := e.mustBuild(dir, builder.Options{})
	for name, st := range ev2.statuses() {
		if st != progress.Cached && !strings.Contains(name, "build context") {
			t.Errorf("rebuild: %s is %s, want cached", name, st)
		}
	}
	if first.Manifest.Digest != second.Manifest.Digest {
		t.Errorf("rebuild gave another image: %s vs %s", first.Manifest.Digest, second.Manifest.Digest)
	}

	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, ev3 := e.mustBuild(dir, builder.Options{})
	want := map[string]progress.Status{
		"RUN echo one > /one":    progress.Cached,
		"COPY a.txt /a.txt":      progress.Done,
		"RUN cat /a.txt > /copy": progress.Done,
		"RUN echo two > /two":    progress.Done,
	}
	got := ev3.statuses()
	for suffix, st := range want {
		found := false
		for name, s := range got {
			if strings.HasSuffix(name, suffix) {
				found = true
				if s != st {
					t.Errorf("after edit: %s is %s, want %s", name, s, st)
				}
			}
		}
		if !found {
			t.Errorf("after edit: no vertex named ...%s in %v", suffix, got)
		}
	}
	if f := e.readImage(third).file(t, "/copy"); string(f.data) != "v2\n" {
		t.Errorf("/copy = %q after the edit", f.data)
	}
	for name, r := range ev3.reasons() {
		if strings.HasSuffix(name, "COPY a.txt /a.txt") && !strings.Contains(r, "a.txt") {
			t.Errorf("miss reason of the COPY does not name the file: %q", r)
		}
	}
}

func TestFailedRunReportsAndLeavesStoreUnchanged(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nRUN echo ok > /ok\n\nRUN echo before; exit 7\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	// Build the steps before the failing one, so the failed build can only
	// add what the failing step makes.
	okDir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo ok > /ok\n"})
	e.mustBuild(okDir, builder.Options{})
	before := snapshotNames(t, e.store)
	_, _, err := e.build(dir, builder.Options{})
	if err == nil {
		t.Fatal("build succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"Dockerfile:4", "RUN echo before; exit 7", "exit code: 7", "/bin/sh -c echo before; exit 7"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	var be *builder.BuildError
	if !errors.As(err, &be) || be.Location.StartLine != 4 {
		t.Errorf("error is not a BuildError at line 4: %#v", err)
	}
	var ee *executor.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("error does not wrap the executor's exit code 7: %#v", err)
	}
	after := snapshotNames(t, e.store)
	if jsonString(after) != jsonString(before) {
		t.Errorf("the failed step changed the snapshots:\nbefore %v\nafter  %v", before, after)
	}
}

func TestDeletedFilesAndOpaqueDirs(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox
RUN mkdir -p /data/keep /data/wipe && echo k > /data/keep/f && echo w > /data/wipe/old && echo x > /gone
RUN rm /gone && rm -rf /data/wipe && mkdir /data/wipe && echo n > /data/wipe/new && rm /bin/vi
`
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	fs := img.flatten()
	for _, gone := range []string{"gone", "data/wipe/old", "bin/vi"} {
		if _, ok := fs[gone]; ok {
			t.Errorf("%s should be deleted", gone)
		}
	}
	for _, kept := range []string{"data/keep/f", "data/wipe/new", "bin/sh"} {
		if _, ok := fs[kept]; !ok {
			t.Errorf("%s should exist", kept)
		}
	}
	last := img.layers[len(img.layers)-1]
	names := map[string]bool{}
	for _, e := range last {
		names[strings.TrimPrefix(e.hdr.Name, "./")] = true
	}
	if !names["gone"] && !names[".wh.gone"] {
		t.Errorf("last layer has no whiteout for /gone: %v", names)
	}
	if !names[".wh.gone"] {
		t.Errorf("last layer lacks .wh.gone: %v", names)
	}
	if !names["data/wipe/.wh..wh..opq"] && !names["data/.wh.wipe"] {
		t.Errorf("last layer neither makes data/wipe opaque nor whites it out: %v", names)
	}
}

func TestExportedArchivesAreValidForRealTools(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\nCMD [\"cat\", \"/hi\"]\n"})
	out := t.TempDir()
	ociPath, dockerPath := filepath.Join(out, "img.oci.tar"), filepath.Join(out, "img.docker.tar")
	_, _ = e.mustBuild(dir, builder.Options{Tags: []string{"tools:1"}, Exports: []exporter.Exporter{
		exporter.OCIArchive{Path: ociPath},
		exporter.DockerArchive{Path: dockerPath},
	}})
	if _, err := exec.LookPath("skopeo"); err == nil {
		for _, ref := range []string{"oci-archive:" + ociPath, "docker-archive:" + dockerPath} {
			out, err := exec.Command("skopeo", "inspect", "--raw", ref).CombinedOutput()
			if err != nil {
				t.Errorf("skopeo inspect %s: %v\n%s", ref, err, out)
			}
		}
	} else {
		t.Log("skopeo not installed: skipping its check")
	}
	if err := exec.Command("docker", "info").Run(); err == nil {
		// A running docker daemon: the docker archive must load and run.
		if out, err := exec.Command("docker", "load", "-i", dockerPath).CombinedOutput(); err != nil {
			t.Errorf("docker load: %v\n%s", err, out)
		} else {
			defer exec.Command("docker", "rmi", "-f", "tools:1").Run()
			out, err := exec.Command("docker", "run", "--rm", "--network", "none", "tools:1").CombinedOutput()
			if err != nil || string(out) != "hi\n" {
				t.Errorf("docker run tools:1 = %q, %v", out, err)
			}
		}
	} else {
		t.Log("no docker daemon: skipping the docker load check")
	}
	if _, err := exec.LookPath("umoci"); err == nil {
		lay := filepath.Join(out, "layout")
		if err := os.MkdirAll(lay, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xf", ociPath, "-C", lay).CombinedOutput(); err != nil {
			t.Fatalf("untar: %v\n%s", err, out)
		}
		bundle := filepath.Join(out, "bundle")
		// The layout names the image by its tag, as BuildKit's does.
		if o, err := exec.Command("umoci", "unpack", "--image", lay+":1", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, o)
		}
		b, err := os.ReadFile(filepath.Join(bundle, "rootfs", "hi"))
		if err != nil || string(b) != "hi\n" {
			t.Errorf("umoci rootfs /hi = %q, %v", b, err)
		}
	} else {
		t.Log("umoci not installed: skipping its check")
	}
}

func snapshotNames(t *testing.T, st *store.Store) map[string]snapshot.Kind {
	t.Helper()
	out := map[string]snapshot.Kind{}
	err := st.Parts().Snapshotter.Walk(context.Background(), func(i snapshot.Info) error {
		out[i.Name] = i.Kind
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsPrefix(list []string, p string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

// A chain of layers too long for one page of absolute overlay paths still
// mounts (the snapshotter switches to relative paths).
func TestDeepLayerChain(t *testing.T) {
	e := newEnv(t)
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	const steps = 130
	for i := 0; i < steps; i++ {
		fmt.Fprintf(&df, "RUN echo %d > /f%03d\n", i, i)
	}
	df.WriteString("RUN cat /f000 /f129 > /ends\n")
	dir := writeContext(t, map[string]string{"Dockerfile": df.String()})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	if len(img.manifest.Layers) != steps+2 {
		t.Errorf("%d layers, want %d", len(img.manifest.Layers), steps+2)
	}
	if got := string(img.file(t, "/ends").data); got != "0\n129\n" {
		t.Errorf("/ends = %q", got)
	}
}

// A miss names what changed: a build arg with its old and new value, an
// edited file, or a rebuilt parent.
func TestMissReasons(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nARG VERSION\nRUN echo $VERSION > /v\nCOPY app.txt /app.txt\nRUN cat /app.txt /v > /all\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df, "app.txt": "a\n"})
	e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"VERSION": "1"}})
	res, _ := e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"VERSION": "2"}})
	want := map[string]string{
		"RUN echo 2 > /v":       "build arg VERSION changed from 1 to 2",
		"COPY app.txt /app.txt": "parent step missed",
	}
	checkReasons(t, res.Steps, want)
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ = e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"VERSION": "2"}})
	checkReasons(t, res.Steps, map[string]string{"COPY app.txt /app.txt": "app.txt changed"})
	for _, s := range res.Steps {
		if strings.HasSuffix(s.Name, "RUN echo 2 > /v") && s.Status != "cached" {
			t.Errorf("%s is %s after a context edit, want cached", s.Name, s.Status)
		}
	}
}

func checkReasons(t *testing.T, steps []builder.Step, want map[string]string) {
	t.Helper()
	for suffix, reason := range want {
		found := false
		for _, s := range steps {
			if strings.HasSuffix(s.Name, suffix) {
				found = true
				if s.Reason != reason {
					t.Errorf("%s: reason %q, want %q", s.Name, s.Reason, reason)
				}
			}
		}
		if !found {
			t.Errorf("no step ending in %q in %+v", suffix, steps)
		}
	}
}

// A RUN that changes nothing makes an empty layer: the directories the
// sandbox touched for its mount points (/etc for /etc/hosts) are not in it.
// A file written below a directory brings the directory along first.
func TestLayersHoldOnlyChanges(t *testing.T) {
	for _, rt := range []string{"sandbox", "runc"} {
		t.Run(rt, func(t *testing.T) {
			e := newEnv(t)
			var opts builder.Options
			if rt == "runc" {
				if _, err := exec.LookPath("runc"); err != nil {
					t.Skip("runc is not installed")
				}
				opts.Runtime = "runc"
			}
			df := "FROM busybox\nRUN true\nRUN echo x > /etc/x\n"
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			res, _ := e.mustBuild(dir, opts)
			img := e.readImage(res)
			hist := img.config.History
			if n := len(hist); n < 2 || !hist[n-2].EmptyLayer || hist[n-1].EmptyLayer {
				t.Fatalf("RUN true should be an empty layer and the next one not: %s", jsonString(hist))
			}
			last := img.layers[len(img.layers)-1]
			var names []string
			for _, en := range last {
				names = append(names, en.hdr.Name)
			}
			if strings.Join(names, " ") != "etc/ etc/x" {
				t.Errorf("last layer entries %q, want [etc/ etc/x]", names)
			}
		})
	}
}

// A mount target reached through a symlink the build planted (here one to
// "/") resolves inside the step's root, never on the host.
func TestSymlinkedMountTargetStaysInside(t *testing.T) {
	e := newEnv(t)
	marker := "strata-escape-" + filepath.Base(t.TempDir())
	hostPath := filepath.Join("/tmp", marker)
	t.Cleanup(func() { os.RemoveAll(hostPath) })
	df := fmt.Sprintf("FROM busybox\nRUN ln -s / /hostroot\n"+
		"RUN --mount=type=tmpfs,target=/hostroot/tmp/%[1]s touch /hostroot/tmp/%[1]s/x && test -e /tmp/%[1]s/x\n"+
		"RUN --mount=type=cache,target=/hostroot/tmp/%[1]s-cache touch /tmp/%[1]s-cache/y\n", marker)
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	e.mustBuild(dir, builder.Options{})
	for _, p := range []string{hostPath, hostPath + "-cache"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created on the host", p)
		}
	}
}

// --no-cache re-runs every step; --no-cache-filter only the named stage's.
// Both say why in the step's reason.
func TestNoCacheAndNoCacheFilter(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox AS build\nRUN echo b > /b\n\nFROM busybox\nRUN echo f > /f\nCOPY --from=build /b /b\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	e.mustBuild(dir, builder.Options{})

	res, _ := e.mustBuild(dir, builder.Options{NoCacheFilter: []string{"build"}})
	for _, s := range res.Steps {
		switch {
		case strings.HasSuffix(s.Name, "RUN echo b > /b"):
			if s.Status != "done" || s.Reason != "cache disabled (--no-cache)" {
				t.Errorf("filtered stage step %s: %s, %q", s.Name, s.Status, s.Reason)
			}
		case strings.HasSuffix(s.Name, "RUN echo f > /f"):
			if s.Status != "cached" {
				t.Errorf("unfiltered stage step %s: %s", s.Name, s.Status)
			}
		}
	}

	res, _ = e.mustBuild(dir, builder.Options{NoCache: true})
	ran := 0
	for _, s := range res.Steps {
		if strings.Contains(s.Name, "RUN ") {
			if s.Status != "done" {
				t.Errorf("--no-cache: %s is %s", s.Name, s.Status)
			}
			ran++
		}
	}
	if ran != 2 {
		t.Errorf("--no-cache ran %d RUN steps, want 2: %+v", ran, res.Steps)
	}
}

// A fully cached rebuild writes no checksum record: the context's file sums
// are found by inode and times, a stage's sum by its snapshot.
func TestNoopRebuildWritesNoChecksums(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox AS deps\nRUN mkdir /deps && echo d > /deps/d\n\nFROM busybox\nCOPY --from=deps /deps /deps\nCOPY a.txt /a.txt\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df, "a.txt": "a\n"})
	e.mustBuild(dir, builder.Options{})
	if err := e.store.Parts().Checksums.Save(); err != nil {
		t.Fatal(err)
	}
	before := checksumFiles(t, e.store.Root())
	if len(before) == 0 {
		t.Fatal("the first build saved no checksum file")
	}
	res, _ := e.mustBuild(dir, builder.Options{})
	for _, s := range res.Steps {
		if strings.Contains(s.Name, "COPY") && s.Status != "cached" {
			t.Errorf("%s is %s", s.Name, s.Status)
		}
	}
	if err := e.store.Parts().Checksums.Save(); err != nil {
		t.Fatal(err)
	}
	if after := checksumFiles(t, e.store.Root()); jsonString(after) != jsonString(before) {
		t.Errorf("the checksum files changed on a no-op rebuild:\nbefore %v\nafter  %v", before, after)
	}
}

// checksumFiles maps each file of the store's checksum dir to its inode,
// size and mtime.
func checksumFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "checksums"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range ents {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, "checksums", en.Name()), &st); err != nil {
			t.Fatal(err)
		}
		out[en.Name()] = fmt.Sprintf("%d/%d/%d", st.Ino, st.Size, st.Mtim.Nano())
	}
	return out
}

// A required secret for an env variable must be given; an optional one
// leaves the variable unset.
func TestRequiredEnvSecret(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nRUN --mount=type=secret,id=tok,env=TOKEN,required=true test \"$TOKEN\" = s3cret\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df})
	_, _, err := e.build(dir, builder.Options{})
	if err == nil || !strings.Contains(err.Error(), `secret "tok" is required but was not given`) {
		t.Fatalf("build without the secret: %v", err)
	}
	e.mustBuild(dir, builder.Options{Secrets: map[string][]byte{"tok": []byte("s3cret")}})

	opt := "FROM busybox\nRUN --mount=type=secret,id=other,env=OTHER test -z \"$OTHER\"\n"
	e.mustBuild(writeContext(t, map[string]string{"Dockerfile": opt}), builder.Options{})
}
