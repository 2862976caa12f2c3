package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/internal/progress"
)

func TestBuildProgressChoice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   buildFlags
		env     map[string]string
		term    bool
		want    progress.Mode
		wantErr string
	}{
		{name: "default on a terminal", flags: buildFlags{progress: "auto"}, term: true, want: progress.ModeTTY},
		{name: "default in a pipe", flags: buildFlags{progress: "auto"}, want: progress.ModePlain},
		{name: "-q", flags: buildFlags{progress: "tty", progressSet: true, quiet: true}, term: true, want: progress.ModeQuiet},
		{name: "-q over the environment", flags: buildFlags{progress: "auto", quiet: true}, env: map[string]string{"BUILDKIT_PROGRESS": "plain"}, want: progress.ModeQuiet},
		{name: "environment", flags: buildFlags{progress: "auto"}, term: true, env: map[string]string{"BUILDKIT_PROGRESS": "rawjson"}, want: progress.ModeRawJSON},
		{name: "flag over environment", flags: buildFlags{progress: "plain", progressSet: true}, env: map[string]string{"BUILDKIT_PROGRESS": "rawjson"}, want: progress.ModePlain},
		{name: "bad flag", flags: buildFlags{progress: "fancy", progressSet: true}, wantErr: `--progress: unknown mode "fancy"`},
		{name: "bad environment", flags: buildFlags{progress: "auto"}, env: map[string]string{"BUILDKIT_PROGRESS": "fancy"}, wantErr: `BUILDKIT_PROGRESS: unknown mode "fancy"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, err := tc.flags.progressChoice(lookup, tc.term)
			if tc.wantErr != "" {
				if err == nil || !isUsage(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("progressChoice() = %v, %v; want a usage error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Mode != tc.want {
				t.Errorf("progressChoice() = %+v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// strata build with each progress mode, into a buffer that takes stdout
// and stderr both: the progress ends (with its summary) before the result
// is printed, and before the error of a failed build is returned.
func TestBuildProgressOutput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building needs root")
	}
	t.Setenv(progress.ModeEnv, "")
	root := filepath.Join(t.TempDir(), "store")
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(dockerfile string) {
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func(args ...string) (string, error) {
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(append([]string{"--root", root, "build", "-o", "type=oci,dest=" + filepath.Join(t.TempDir(), "o.tar")}, args...), ctx))
		err := cmd.Execute()
		return out.String(), err
	}
	write("FROM scratch\nCOPY a.txt /a.txt\n")
	out, err := build("--progress=plain")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The export to the archive is a step of its own, with the bytes it wrote.
	sum := strings.Index(out, "strata: 3 steps: 3 run, 0 cached")
	if !strings.Contains(out, "#2 [1/1] COPY a.txt /a.txt\n") || !strings.Contains(out, " exporting to oci archive ") || sum < 0 || sum > strings.Index(out, "image sha256:") {
		t.Errorf("plain progress, then its summary, then the result:\n%s", out)
	}

	out, err = build("--progress=rawjson")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], `{"vertexes":[{"digest":"sha256:`) {
		t.Errorf("rawjson:\n%s", out)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "image ") {
			break
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(l), &st); err != nil {
			t.Errorf("rawjson line %q: %v", l, err)
		}
	}

	for _, q := range []string{"-q", "--progress=quiet"} {
		out, err = build(q)
		if err != nil || strings.Contains(out, "#1") || strings.Contains(out, "strata:") {
			t.Errorf("%s: %v\n%s", q, err, out)
		}
	}

	write("FROM scratch\nCOPY missing.txt /m\n")
	out, err = build("--progress=plain")
	if err == nil || !strings.Contains(out, "1 failed") {
		t.Errorf("failed build: %v; the summary should count the failure:\n%s", err, out)
	}

	// The warnings are listed again after the progress's summary, of a
	// build that failed too; quiet prints them only once.
	warnings := "2 warnings:\n" +
		" - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (Dockerfile:4)\n" +
		" - build arg VERSOIN was not consumed by any ARG of the stages built (did you mean VERSION?)\n"
	for _, df := range []string{"FROM scratch\nARG VERSION\nCOPY a.txt /a\nCMD echo hi\n", "FROM scratch\nARG VERSION\nCOPY missing.txt /m\nCMD echo hi\n"} {
		write(df)
		out, _ = build("--progress=plain", "--build-arg", "VERSOIN=1")
		sum := strings.Index(out, " steps: ")
		if at := strings.Index(out, warnings); sum < 0 || at < sum {
			t.Errorf("plain: the summary, then the warnings:\n%s", out)
		}
		out, _ = build("-q", "--build-arg", "VERSOIN=1")
		if strings.Contains(out, "2 warnings:") || !strings.Contains(out, "WARNING: build arg VERSOIN") {
			t.Errorf("-q: the warnings once, as the build starts:\n%s", out)
		}
	}
}

// pull and push have no --progress, but heed BUILDKIT_PROGRESS: a bad
// value is a usage error found before the store is opened.
func TestBadProgressEnvironmentOfPullAndPush(t *testing.T) {
	t.Setenv(progress.ModeEnv, "fancy")
	for _, args := range [][]string{{"pull", "busybox"}, {"push", "localhost:5000/app"}, {"build", "."}} {
		root := filepath.Join(t.TempDir(), "store")
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"--root", root}, args...))
		if err := cmd.Execute(); !isUsage(err) || !strings.Contains(err.Error(), "BUILDKIT_PROGRESS") {
			t.Errorf("strata %s: %v, want a usage error naming BUILDKIT_PROGRESS", strings.Join(args, " "), err)
		}
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Errorf("strata %s opened the store", strings.Join(args, " "))
		}
	}
}
