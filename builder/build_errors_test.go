package builder_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

func TestDockerfileErrorsNameLineAndProblem(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
		opts  builder.Options
	}{
		{"unknown instruction", map[string]string{"Dockerfile": "FROM busybox\nRUNN make\n"},
			[]string{"Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)", "   2 | >>> RUNN make"}, builder.Options{}},
		{"bad flag", map[string]string{"Dockerfile": "FROM busybox\n\nCOPY --chwn=1 a /a\n", "a": "a"},
			[]string{"Dockerfile:3: unknown flag: --chwn (did you mean --chown?)", "   3 | >>> COPY --chwn=1 a /a"}, builder.Options{}},
		{"misspelt instruction", map[string]string{"Dockerfile": "FROM busybox\nCOPPY a /a\n", "a": "a"},
			[]string{"Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)", "   2 | >>> COPPY a /a"}, builder.Options{}},
		{"misspelt from stage", map[string]string{"Dockerfile": "FROM busybox AS builder\nRUN true\nFROM buidler\n"},
			[]string{"Dockerfile:3: buidler: ", "(did you mean builder?)", "   3 | >>> FROM buidler"}, builder.Options{}},
		{"misspelt mount stage", map[string]string{"Dockerfile": "FROM busybox AS builder\nFROM busybox\nRUN --mount=from=buidler,target=/b true\n"},
			[]string{"Dockerfile:3: buidler: ", "(did you mean builder?)", "   3 | >>> RUN --mount=from=buidler,target=/b true"}, builder.Options{}},
		{"misspelt target", map[string]string{"Dockerfile": "FROM busybox AS builder\nFROM busybox\n"},
			[]string{`Dockerfile: target stage "buidler" could not be found (did you mean builder?)`}, builder.Options{Target: "buidler"}},
		{"unknown stage", map[string]string{"Dockerfile": "FROM busybox AS build\nFROM busybox\nCOPY --from=biuld /x /x\n"},
			[]string{"Dockerfile:3: biuld: ", "(did you mean build?)", "   3 | >>> COPY --from=biuld /x /x"}, builder.Options{}},
		{"missing base image", map[string]string{"Dockerfile": "FROM busybox\nFROM nosuch:1 AS x\nRUN true\n"},
			[]string{"Dockerfile:2:", "nosuch:1", "not found", "   2 | >>> FROM nosuch:1 AS x"}, builder.Options{}},
		{"missing copy source", map[string]string{"Dockerfile": "FROM busybox\nCOPY there.txt missing.txt /dst/\n", "there.txt": "x"},
			[]string{"Dockerfile:2", "COPY there.txt missing.txt /dst/", "missing.txt", "not found"}, builder.Options{}},
		{"source outside the context", map[string]string{"Dockerfile": "FROM busybox\nCOPY ../outside /x\n"},
			[]string{`Dockerfile:2: COPY source "../outside" is outside the build context`, "   2 | >>> COPY ../outside /x"}, builder.Options{}},
		{"unterminated heredoc", map[string]string{"Dockerfile": "FROM busybox\nRUN <<EOF\necho\n"},
			[]string{"Dockerfile:2: unterminated heredoc"}, builder.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.buildError(tc.files, tc.opts)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

// cli is the strata binary built for a test, with a store holding busybox.
type cli struct {
	t         *testing.T
	bin, root string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "strata")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/strata-build/strata/cmd/strata").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := &cli{t: t, bin: bin, root: filepath.Join(dir, "store")}
	rootfs := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(rootfs, testutil.BusyboxRootfs(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := c.run(nil, "import", rootfs, "busybox"); code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	return c
}

// run runs the binary with stdin and returns its exit code and output.
func (c *cli) run(stdin []byte, args ...string) (int, string, string) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		c.t.Fatalf("run %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func TestCLIExitCodesStdinAndCheck(t *testing.T) {
	c := newCLI(t)
	ctxDir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUNN make\n", "a": "from the context"})

	code, _, stderr := c.run(nil, "build", "--progress", "quiet", ctxDir)
	if code != 1 || !strings.Contains(stderr, "Dockerfile:2: unknown instruction: RUNN") || !strings.Contains(stderr, ">>> RUNN make") {
		t.Errorf("unknown instruction: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = c.run(nil, "build", "--no-such-flag", ctxDir)
	if code != 2 {
		t.Errorf("usage error: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = c.run([]byte("FROM nosuch:1\n"), "build", "-f", "-", ctxDir)
	if code != 1 || !strings.Contains(stderr, "Dockerfile:1:") || !strings.Contains(stderr, "nosuch:1") {
		t.Errorf("missing base image: exit %d, stderr:\n%s", code, stderr)
	}

	// -f - reads the Dockerfile from stdin; the context is the directory.
	iid := filepath.Join(t.TempDir(), "iid")
	code, _, stderr = c.run([]byte("FROM busybox\nCOPY a /a\n"), "build", "--progress", "quiet", "-f", "-", "-t", "stdin-df:1", ctxDir)
	if code != 0 {
		t.Fatalf("-f -: exit %d, stderr:\n%s", code, stderr)
	}

	// `build -` takes a context tar (here gzip-compressed) on stdin.
	tarball := gzipOf(t, tarOf(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY sub/b /b\n", "sub/": "", "sub/b": "from the tar"}))
	code, _, stderr = c.run(tarball, "build", "--progress", "quiet", "-t", "stdin-ctx:1", "--iidfile", iid, "-")
	if code != 0 {
		t.Fatalf("build -: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = c.run([]byte("FROM busybox\nRUN echo plain > /plain\n"), "build", "--progress", "quiet", "-t", "stdin-plain:1", "-")
	if code != 0 {
		t.Fatalf("build - with a Dockerfile: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = c.run(tarball, "build", "-f", "-", "-")
	if code != 2 {
		t.Errorf("-f - with build -: exit %d, stderr:\n%s", code, stderr)
	}

	// --check lints only: warnings and exit 0, or exit 1 on an error.
	lint := writeContext(t, map[string]string{"Dockerfile": "FROM busybox as base\nCMD echo hi\nRUN exit 1\n"})
	code, stdout, stderr := c.run(nil, "build", "--check", lint)
	if code != 0 || !strings.Contains(stderr, "WARNING: FromAsCasing") || !strings.Contains(stderr, "WARNING: JSONArgsRecommended") ||
		!strings.Contains(stdout, "Check complete, 2 warnings have been found!") {
		t.Errorf("--check: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr = c.run(nil, "build", "--check", ctxDir)
	if code != 1 || !strings.Contains(stderr, "Dockerfile:2: unknown instruction") {
		t.Errorf("--check of a broken Dockerfile: exit %d, stderr:\n%s", code, stderr)
	}
	strict := writeContext(t, map[string]string{"Dockerfile": "# check=error=true\nFROM busybox as base\n"})
	code, _, stderr = c.run(nil, "build", "--progress", "quiet", strict)
	if code != 1 || !strings.Contains(stderr, "lint violation found for rules: FromAsCasing") {
		t.Errorf("check=error=true: exit %d, stderr:\n%s", code, stderr)
	}

	st, err := store.Open(context.Background(), c.root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := &env{t: t, store: st}
	for name, want := range map[string]map[string]string{
		"stdin-df:1": {"/a": "from the context"}, "stdin-ctx:1": {"/b": "from the tar"}, "stdin-plain:1": {"/plain": "plain\n"},
	} {
		img := e.readImage(e.stored(name))
		for p, data := range want {
			if got := fileData(img, p); got != data {
				t.Errorf("%s: %s = %q, want %q", name, p, got, data)
			}
		}
	}
	if b, err := os.ReadFile(iid); err != nil || !strings.HasPrefix(string(b), "sha256:") {
		t.Errorf("iidfile %q, %v", b, err)
	}
}

// stored returns the build result of an image tagged name in the store.
func (e *env) stored(name string) *builder.Result {
	e.t.Helper()
	img, err := e.store.Image(context.Background(), name)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return &builder.Result{Manifest: img.Target}
}
