package builder_test

// The differential test builds every case under testdata/differential twice,
// with strata and with `DOCKER_BUILDKIT=1 docker build`, from the same
// busybox base bytes, and compares the two images after normalization:
//
//   - the filesystem: layers applied in order (whiteouts and opaque
//     directories included) and each path described by type, permission bits,
//     owner, size, content digest, symlink target and hardlink group;
//     modification times are not compared, and a short list of paths that
//     only a runtime creates (ignoredPaths) is left out;
//   - the config fields a Dockerfile sets (configKeys), with absent, null and
//     empty values treated alike;
//   - the history the build added on top of the base (created_by and
//     empty_layer per entry).
//
// A case whose Dockerfile uses syntax the daemon's BuildKit does not know is
// skipped with the reason when docker rejects it; strata still has to build it.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

// diffPrefix names everything the test creates in the docker daemon, so it
// removes exactly what it made and nothing another user of the daemon has.
const diffPrefix = "strata-diff-"

// diffBase is the base image's name in both builders; the cases' Dockerfiles
// start FROM it.
const diffBase = diffPrefix + "busybox:latest"

// diffCase is one directory under testdata/differential: a Dockerfile and
// its context, plus what the directory cannot hold.
type diffCase struct {
	name      string
	buildArgs map[string]string
	target    string
	// setup adds to the copied context what git cannot store: hardlinks,
	// empty directories, modes beyond 0644/0755, generated archives.
	setup func(t *testing.T, dir string)
	// dockerUnsupported, when set, is why docker 20.10's built-in Dockerfile
	// frontend may reject the case; the case is skipped if docker fails.
	dockerUnsupported string
	// known lists, path or config key -> reason, differences that are
	// understood and accepted (see the report in testdata/differential).
	known map[string]string
}

// ignoredPaths are paths left out of every filesystem comparison.
var ignoredPaths = map[string]string{}

// configKeys are the config fields a Dockerfile sets.
var configKeys = []string{
	"Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
	"StopSignal", "Shell", "Healthcheck", "OnBuild", "ArgsEscaped",
}

func TestDifferentialDocker(t *testing.T) {
	docker := dockerCLI(t)
	e := newEnv(t)
	base := testutil.BusyboxRootfs(t)
	if _, err := e.store.Import(context.Background(), bytes.NewReader(base), store.ImportOptions{Name: diffBase}); err != nil {
		t.Fatal(err)
	}
	docker.run(t, bytes.NewReader(base), "import", "-", diffBase)
	t.Cleanup(func() { docker.rmi(diffBase) })
	dockerBase := docker.save(t, diffBase)
	strataBase := e.strataBuild(t, writeContext(t, map[string]string{"Dockerfile": "FROM " + diffBase + "\n"}), diffCase{})
	t.Run("base", func(t *testing.T) {
		compareFS(t, dockerBase, strataBase, &knownDiffs{})
	})

	cases := diffCases()
	checkCaseDirs(t, cases)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := caseContext(t, c)
			st := e.strataBuild(t, dir, c)
			dk, err := docker.build(t, dir, c)
			if err != nil {
				if c.dockerUnsupported != "" {
					t.Skipf("known difference: docker 20.10's BuildKit rejects the case (%s): %v", c.dockerUnsupported, err)
				}
				t.Fatal(err)
			}
			if testing.Verbose() {
				logChanges(t, strataBase, st)
			}
			known := &knownDiffs{known: c.known}
			compareFS(t, dk, st, known)
			compareConfig(t, dk, st, known)
			compareHistory(t, dk, st, len(dockerBase.history), len(strataBase.history), known)
			known.finish(t)
		})
	}
}

// checkCaseDirs fails when a directory under testdata/differential has no
// case or a case has no directory.
func checkCaseDirs(t *testing.T, cases []diffCase) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("..", "testdata", "differential"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() {
			dirs[e.Name()] = true
		}
	}
	for _, c := range cases {
		if !dirs[c.name] {
			t.Errorf("case %s has no directory testdata/differential/%s", c.name, c.name)
		}
		delete(dirs, c.name)
	}
	for d := range dirs {
		t.Errorf("testdata/differential/%s has no case in diffCases", d)
	}
}

// caseContext copies the case's directory into a fresh one (so setup may add
// to it) and runs setup.
func caseContext(t *testing.T, c diffCase) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "differential", c.name)
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	if c.setup != nil {
		c.setup(t, dir)
	}
	return dir
}

// savedImage is an image read back from a docker archive.
type savedImage struct {
	image
	rawConfig map[string]json.RawMessage
	history   []historyEntry
}

type historyEntry struct {
	CreatedBy  string `json:"created_by,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

func (e *env) strataBuild(t *testing.T, dir string, c diffCase) *savedImage {
	t.Helper()
	var buf bytes.Buffer
	_, err := builder.Build(context.Background(), e.store, builder.Options{
		ContextDir: dir,
		BuildArgs:  c.buildArgs,
		Target:     c.target,
		Exports:    []exporter.Exporter{exporter.DockerArchive{W: &buf}},
	})
	if err != nil {
		t.Fatalf("strata build: %v", err)
	}
	img, err := readDockerArchive(buf.Bytes())
	if err != nil {
		t.Fatalf("read strata's docker archive: %v", err)
	}
	return img
}

// readDockerArchive reads the first image of a `docker save` tar: its
// config and its layers (plain or gzip).
func readDockerArchive(b []byte) (*savedImage, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[path.Clean(h.Name)] = data
	}
	var manifest []exporter.DockerManifestEntry
	if err := json.Unmarshal(files[exporter.DockerManifestFile], &manifest); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(manifest) == 0 {
		return nil, fmt.Errorf("manifest.json lists no image")
	}
	img := &savedImage{}
	var cfg struct {
		Config  map[string]json.RawMessage `json:"config"`
		History []historyEntry             `json:"history"`
	}
	if err := json.Unmarshal(files[path.Clean(manifest[0].Config)], &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", manifest[0].Config, err)
	}
	img.rawConfig, img.history = cfg.Config, cfg.History
	for _, l := range manifest[0].Layers {
		data, ok := files[path.Clean(l)]
		if !ok {
			return nil, fmt.Errorf("layer %s is not in the archive", l)
		}
		entries, err := readLayerTar(data)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l, err)
		}
		img.layers = append(img.layers, entries)
	}
	return img, nil
}

// readLayerTar reads a layer (plain or gzip) and turns each hardlink into a
// copy of its target's header and data, so the flattened filesystem
// describes content; hardlinks keeps the link's name in Linkname with the
// type TypeLink replaced by TypeReg and PAXRecords["link"] set.
func readLayerTar(b []byte) ([]*tarEntry, error) {
	var r io.Reader = bytes.NewReader(b)
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	tr := tar.NewReader(r)
	byName := map[string]*tarEntry{}
	var out []*tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		name := cleanName(h.Name)
		if h.Typeflag == tar.TypeLink {
			target, ok := byName[cleanName(h.Linkname)]
			if !ok {
				return nil, fmt.Errorf("hardlink %s to %s: target not earlier in the layer", h.Name, h.Linkname)
			}
			hh := *target.hdr
			hh.Name = h.Name
			hh.PAXRecords = map[string]string{"link": cleanName(h.Linkname)}
			if target.hdr.PAXRecords["link"] != "" {
				hh.PAXRecords["link"] = target.hdr.PAXRecords["link"]
			}
			h, data = &hh, target.data
		}
		e := &tarEntry{hdr: h, data: data}
		byName[name] = e
		out = append(out, e)
	}
}

func cleanName(n string) string {
	return strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/")
}

// describeFS gives one line per path of the flattened filesystem.
func describeFS(img *savedImage) map[string]string {
	flat := img.flatten()
	// Hardlink groups: every path sharing a first name, listed on each.
	groups := map[string][]string{}
	for p, e := range flat {
		if l := e.hdr.PAXRecords["link"]; l != "" {
			groups[l] = append(groups[l], p)
		}
	}
	out := map[string]string{}
	for p, e := range flat {
		h := e.hdr
		var typ, extra string
		switch h.Typeflag {
		case tar.TypeDir:
			typ = "dir"
		case tar.TypeReg, tar.TypeRegA:
			sum := sha256.Sum256(e.data)
			typ, extra = "file", fmt.Sprintf(" size=%d sha256=%s", len(e.data), hex.EncodeToString(sum[:6]))
			first := h.PAXRecords["link"]
			if first == "" && groups[p] != nil {
				first = p
			}
			if g := groups[first]; g != nil {
				all := append([]string{first}, g...)
				sort.Strings(all)
				extra += " links=" + strings.Join(all, ",")
			}
		case tar.TypeSymlink:
			typ, extra = "symlink", " -> "+h.Linkname
		case tar.TypeChar, tar.TypeBlock:
			typ, extra = "dev", fmt.Sprintf(" %d:%d", h.Devmajor, h.Devminor)
		case tar.TypeFifo:
			typ = "fifo"
		default:
			typ = "type" + strconv.Itoa(int(h.Typeflag))
		}
		out["/"+p] = fmt.Sprintf("%s %04o %d:%d%s", typ, h.Mode&0o7777, h.Uid, h.Gid, extra)
	}
	return out
}

// logChanges logs the paths a case changed above the base, so a reader of
// the verbose output sees what the comparison covered.
func logChanges(t *testing.T, base, img *savedImage) {
	t.Helper()
	b, s := describeFS(base), describeFS(img)
	var lines []string
	for _, p := range unionKeys(b, s) {
		if b[p] != s[p] {
			lines = append(lines, fmt.Sprintf("%s: %s", p, orNone(s[p])))
		}
	}
	t.Logf("paths changed above the base:\n%s", strings.Join(lines, "\n"))
}

// knownDiffs tracks a case's known differences: each must still occur (a
// fixed one is reported so the list stays true), and a remaining strata bug
// skips the case once everything else compared equal.
type knownDiffs struct {
	known map[string]string
	seen  map[string]bool
}

// has reports whether key is a known difference and records that it occurred.
func (k *knownDiffs) has(key string) bool {
	if _, ok := k.known[key]; !ok {
		return false
	}
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	k.seen[key] = true
	return true
}

// finish reports known differences that no longer occur and skips the case
// for the strata bugs that remain.
func (k *knownDiffs) finish(t *testing.T) {
	t.Helper()
	var bugs []string
	for _, key := range sortedKeys(k.known) {
		switch {
		case !k.seen[key]:
			t.Errorf("known difference %s (%s) no longer occurs: remove it from the case", key, k.known[key])
		case strings.HasPrefix(k.known[key], "strata bug"):
			bugs = append(bugs, key+": "+k.known[key])
		}
	}
	if len(bugs) > 0 && !t.Failed() {
		t.Skipf("known difference: %s", strings.Join(bugs, "; "))
	}
}

// compareFS reports every path whose description differs, unless the path
// is ignored everywhere or known for this case.
func compareFS(t *testing.T, dk, st *savedImage, known *knownDiffs) {
	t.Helper()
	d, s := describeFS(dk), describeFS(st)
	var diffs []string
	for _, p := range unionKeys(d, s) {
		if _, ok := ignoredPaths[p]; ok || d[p] == s[p] {
			continue
		}
		if known.has(p) {
			t.Logf("known difference %s (%s):\n\tdocker: %s\n\tstrata: %s", p, known.known[p], orNone(d[p]), orNone(s[p]))
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s\n\tdocker: %s\n\tstrata: %s", p, orNone(d[p]), orNone(s[p])))
	}
	if len(diffs) > 0 {
		t.Errorf("filesystems differ in %d paths:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// compareConfig compares the Dockerfile-set config fields; a field that is
// absent, null or empty is the same as any other such field.
func compareConfig(t *testing.T, dk, st *savedImage, known *knownDiffs) {
	t.Helper()
	for _, k := range configKeys {
		d, s := configValue(t, dk.rawConfig[k]), configValue(t, st.rawConfig[k])
		diff := cmp.Diff(d, s)
		if diff == "" || known.has(k) {
			continue
		}
		t.Errorf("config %s differs (-docker +strata):\n%s", k, diff)
	}
}

func configValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("config value %s: %v", raw, err)
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// compareHistory compares the entries each build added above its base.
func compareHistory(t *testing.T, dk, st *savedImage, dockerBase, strataBase int, known *knownDiffs) {
	t.Helper()
	d := normalizeHistory(dk.history[min(dockerBase, len(dk.history)):])
	s := normalizeHistory(st.history[min(strataBase, len(st.history)):])
	if diff := cmp.Diff(d, s); diff != "" && !known.has("history") {
		t.Errorf("history above the base differs (-docker +strata):\n%s", diff)
	}
}

// normalizeHistory removes from created_by what BuildKit's versions write
// differently. Docker 20.10 (BuildKit 0.8) records an ARG as the
// Dockerfile's text ("ARG X"), newer BuildKit and strata as the resolved
// value ("ARG X=cli"): only the names are kept. Docker 20.10 leaves --chown
// and --chmod out of COPY and ADD entries, newer BuildKit and strata write
// them: they are dropped.
func normalizeHistory(h []historyEntry) []historyEntry {
	out := make([]historyEntry, len(h))
	for i, e := range h {
		words := strings.Split(e.CreatedBy, " ")
		var kept []string
		switch words[0] {
		case "ARG":
			for _, w := range words {
				k, _, _ := strings.Cut(w, "=")
				kept = append(kept, k)
			}
		case "HEALTHCHECK", "EXPOSE":
			// Docker 20.10 prints its own structs (a map of ports, a
			// quoted healthcheck); newer BuildKit and strata print
			// "[80/tcp]" and "{Test:[...] Interval:5s ...}". The values
			// are compared in the config.
			kept = words[:1]
		case "COPY", "ADD":
			for _, w := range words {
				if !strings.HasPrefix(w, "--chown=") && !strings.HasPrefix(w, "--chmod=") {
					kept = append(kept, w)
				}
			}
		default:
			kept = words
		}
		out[i] = historyEntry{CreatedBy: strings.Join(kept, " "), EmptyLayer: e.EmptyLayer}
	}
	return out
}

func unionKeys(a, b map[string]string) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

// dockerClient runs a docker CLI whose `build` uses BuildKit.
type dockerClient struct{ bin string }

// dockerCLI finds a docker CLI that talks to a running daemon and builds with
// BuildKit when DOCKER_BUILDKIT=1: Debian's docker.io client first (it has
// BuildKit built in), then one on PATH if it is older than 23 or has buildx.
func dockerCLI(t *testing.T) dockerClient {
	t.Helper()
	testutil.RequireRoot(t)
	var why []string
	for _, bin := range []string{"/usr/bin/docker", "docker"} {
		p, err := exec.LookPath(bin)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: not found", bin))
			continue
		}
		if out, err := exec.Command(p, "info").CombinedOutput(); err != nil {
			why = append(why, fmt.Sprintf("%s info: %v: %s", p, err, firstLine(out)))
			continue
		}
		out, err := exec.Command(p, "version", "--format", "{{.Client.Version}}").Output()
		major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0])
		if err == nil && major > 0 && major < 23 {
			return dockerClient{bin: p}
		}
		if exec.Command(p, "buildx", "version").Run() == nil {
			return dockerClient{bin: p}
		}
		why = append(why, fmt.Sprintf("%s: client %s without buildx cannot build with BuildKit", p, strings.TrimSpace(string(out))))
	}
	t.Skipf("needs a docker daemon and a BuildKit-capable docker CLI: %s", strings.Join(why, "; "))
	return dockerClient{}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func (d dockerClient) command(ctx context.Context, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	cmd.Stdin = stdin
	return cmd
}

func (d dockerClient) run(t *testing.T, stdin io.Reader, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := d.command(ctx, stdin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func (d dockerClient) rmi(name string) {
	_ = d.command(context.Background(), nil, "rmi", "--force", name).Run()
}

func (d dockerClient) save(t *testing.T, name string) *savedImage {
	t.Helper()
	img, err := readDockerArchive(d.run(t, nil, "save", name))
	if err != nil {
		t.Fatalf("read docker save of %s: %v", name, err)
	}
	return img
}

// build runs `docker build` on the case and reads back `docker save` of the
// result; an error is docker rejecting the build.
func (d dockerClient) build(t *testing.T, dir string, c diffCase) (*savedImage, error) {
	t.Helper()
	name := diffPrefix + c.name + ":latest"
	args := []string{"build", "--network", "none", "-t", name}
	for _, k := range sortedKeys(c.buildArgs) {
		args = append(args, "--build-arg", k+"="+c.buildArgs[k])
	}
	if c.target != "" {
		args = append(args, "--target", c.target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := d.command(ctx, nil, append(args, dir)...).CombinedOutput()
	t.Cleanup(func() { d.rmi(name) })
	if err != nil {
		return nil, fmt.Errorf("docker build %s: %w: %s", c.name, err, lastLines(out, 5))
	}
	return d.save(t, name), nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeFileMode writes a file under dir and sets its mode exactly (umask and
// git lose setuid and 0700).
func writeFileMode(t *testing.T, dir, name, data string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode.Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// diffCases are the cases, one per directory of testdata/differential.
func diffCases() []diffCase {
	return []diffCase{
		{name: "multistage"},
		{name: "args", buildArgs: map[string]string{"LOCAL": "fromcli", "UNSET": "set", "UNUSED": "x"}},
		{name: "args-stages", buildArgs: map[string]string{"X": "cli", "Y": "why"}},
		{name: "workdir-user"},
		{name: "copy-wildcards"},
		{name: "copy-chown"},
		{name: "copy-dir-root"},
		{name: "copy-chmod", setup: setupChmod, known: map[string]string{
			"/m2": "docker 20.10 drops setuid from --chmod=4755 (BuildKit 0.8 turns the octal value into an os.FileMode, whose setuid bit is not 04000); strata keeps 04000",
		}},
		{name: "add-tar", setup: setupAddTar},
		{name: "run-whiteouts"},
		{name: "run-opaque"},
		{name: "heredoc", dockerUnsupported: "the built-in frontend of docker 20.10 has no heredocs; they need dockerfile:1.4"},
		{name: "entrypoint-cmd"},
		{name: "entrypoint-shell"},
		{name: "metadata"},
		{name: "healthcheck-none"},
		{name: "onbuild"},
		{name: "dockerignore"},
		{name: "links", setup: setupLinks},
		{name: "empty-dirs", setup: setupEmptyDirs},
		{name: "modes", setup: setupModes},
	}
}

// setupAddTar writes archive.tar.gz (directories, modes, owners, a symlink
// and a hardlink) and plain.tar for ADD to extract.
func setupAddTar(t *testing.T, dir string) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	mtime := time.Unix(1600000000, 0)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "top/", Mode: 0o750, Uid: 1234, Gid: 4321},
		{Typeflag: tar.TypeReg, Name: "top/file", Mode: 0o640, Uid: 1234, Gid: 4321, Size: 5},
		{Typeflag: tar.TypeReg, Name: "top/exec", Mode: 0o4755, Size: 5},
		{Typeflag: tar.TypeSymlink, Name: "top/sym", Linkname: "file", Mode: 0o777},
		{Typeflag: tar.TypeLink, Name: "top/hard", Linkname: "top/file", Mode: 0o640, Uid: 1234, Gid: 4321},
		{Typeflag: tar.TypeReg, Name: "implicit/parent/f", Mode: 0o600, Size: 5},
	} {
		h.ModTime = mtime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte("data\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(tb.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFileMode(t, dir, "archive.tar.gz", gz.String(), 0o644)

	var pb bytes.Buffer
	tw = tar.NewWriter(&pb)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "plain.txt", Mode: 0o644, Size: 6, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("plain\n")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFileMode(t, dir, "plain.tar", pb.String(), 0o644)
}

// setupLinks makes symlinks (to a file, to a directory, dangling, absolute)
// and a hardlinked pair in the context.
func setupLinks(t *testing.T, dir string) {
	t.Helper()
	writeFileMode(t, dir, "file", "content\n", 0o644)
	writeFileMode(t, dir, "d/inner", "inner\n", 0o644)
	writeFileMode(t, dir, "hard1", "shared\n", 0o644)
	for _, l := range [][2]string{{"file", "link-to-file"}, {"d", "link-to-dir"}, {"missing", "dangling"}, {"/etc/passwd", "absolute"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "hard1"), filepath.Join(dir, "hard2")); err != nil {
		t.Fatal(err)
	}
}

// setupEmptyDirs makes empty directories, one of them 0700, one nested.
func setupEmptyDirs(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{{"emptydir", 0o755}, {"private", 0o700}, {"nested/a/b", 0o755}} {
		p := filepath.Join(dir, d.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// setupModes makes files and directories with modes git does not keep.
func setupModes(t *testing.T, dir string) {
	t.Helper()
	writeFileMode(t, dir, "private", "p\n", 0o700)
	writeFileMode(t, dir, "readonly", "r\n", 0o400)
	writeFileMode(t, dir, "setuid", "s\n", 0o755|fs.ModeSetuid)
	writeFileMode(t, dir, "setgid", "g\n", 0o750|fs.ModeSetgid)
	writeFileMode(t, dir, "secretdir/f", "f\n", 0o600)
	if err := os.Chmod(filepath.Join(dir, "secretdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sticky"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "sticky"), 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
}

// setupChmod makes a 0700 directory with a 0600 file, to see which modes
// --chmod replaces.
func setupChmod(t *testing.T, dir string) {
	t.Helper()
	writeFileMode(t, dir, "private/f", "f\n", 0o600)
	if err := os.Chmod(filepath.Join(dir, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
}
