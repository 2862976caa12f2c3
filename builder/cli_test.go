package builder_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// `strata build -q` prints only the image ID, as `docker build -q` does,
// and --metadata-file lists every step with its cache status and reason.
func TestCLIQuietAndMetadataFile(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
	md := filepath.Join(t.TempDir(), "md.json")
	out, err := strataCmd(bin, root, "build", "-q", "--metadata-file", md, dir).Output()
	if err != nil {
		t.Fatalf("build -q: %v", err)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).Match(out) {
		t.Errorf("build -q printed %q, want only the image ID", out)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Config string `json:"containerimage.config.digest"`
		Steps  []struct {
			Name, Status, Reason string
		} `json:"strata.steps"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Config != strings.TrimSpace(string(out)) {
		t.Errorf("metadata config %s, printed %s", meta.Config, out)
	}
	var run bool
	for _, s := range meta.Steps {
		if strings.HasSuffix(s.Name, "RUN echo hi > /hi") {
			run = true
			if s.Status != "done" || s.Reason != "no previous build of this step" {
				t.Errorf("RUN step in metadata: %+v", s)
			}
		}
	}
	if !run {
		t.Errorf("no RUN step in the metadata: %s", b)
	}
}

// SOURCE_DATE_EPOCH in the environment is the build arg, as buildx passes
// it: two builds that run every step again give the same image digest.
func TestCLISourceDateEpochFromEnvironment(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
	build := func(env ...string) string {
		t.Helper()
		cmd := strataCmd(bin, root, "build", "-q", "--no-cache", dir)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if a, b := build(), build(); a == b {
		t.Fatalf("two --no-cache builds without SOURCE_DATE_EPOCH gave one image %s: the test proves nothing", a)
	}
	if a, b := build("SOURCE_DATE_EPOCH=1700000000"), build("SOURCE_DATE_EPOCH=1700000000"); a != b {
		t.Errorf("with SOURCE_DATE_EPOCH in the environment: %s then %s, want one image", a, b)
	}
}
