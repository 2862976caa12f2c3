package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// complete runs strata's hidden __complete command, as the shell scripts
// do, and returns the completions and the directive line.
func complete(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, err := run(t, append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompleteImages(t *testing.T) {
	root := testStore(t, ocispec.ImageConfig{}, "busybox:1.36", "busybox", "127.0.0.1:5000/team/app:1")
	all := []string{"127.0.0.1:5000/team/app:1", "busybox:1.36", "busybox:latest"}
	noFiles := ":4" // ShellCompDirectiveNoFileComp
	for _, tc := range []struct {
		args []string
		want []string
		dir  string
	}{
		{[]string{"inspect", ""}, all, noFiles},
		{[]string{"inspect", "busy"}, []string{"busybox:1.36", "busybox:latest"}, noFiles},
		{[]string{"inspect", "busybox:latest", ""}, []string{"127.0.0.1:5000/team/app:1", "busybox:1.36"}, noFiles},
		{[]string{"inspect", "docker.io/library/busybox:l"}, []string{"docker.io/library/busybox:latest"}, noFiles},
		{[]string{"history", ""}, all, noFiles},
		{[]string{"history", "busybox:1.36", ""}, nil, noFiles},
		{[]string{"tag", "127"}, []string{"127.0.0.1:5000/team/app:1"}, noFiles},
		{[]string{"tag", "busybox:1.36", ""}, nil, noFiles},
		{[]string{"rmi", "busybox:1.36", "b"}, []string{"busybox:latest"}, noFiles},
		{[]string{"push", ""}, all, noFiles},
		{[]string{"save", "-o", "x.tar", ""}, all, noFiles},
		{[]string{"export", ""}, all, noFiles},
		{[]string{"images", "bu"}, []string{"busybox:1.36", "busybox:latest"}, noFiles},
		{[]string{"images", "--filter", ""}, imageFilterCompletions, ":6"}, // and no space
		{[]string{"images", "--filter", "since=busybox:1"}, []string{"since=busybox:1.36"}, noFiles},
		{[]string{"du", ""}, nil, noFiles},
	} {
		got, dir := complete(t, append([]string{"--root", root}, tc.args...)...)
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" || dir != tc.dir {
			t.Errorf("strata %q: directive %s, want %s; completions (-want +got):\n%s", tc.args, dir, tc.dir, diff)
		}
	}
	// Another root has other images; one with no store has none, and is
	// not made.
	other := testStore(t, ocispec.ImageConfig{}, "alpine")
	if got, _ := complete(t, "--root", other, "inspect", ""); !cmp.Equal(got, []string{"alpine:latest"}) {
		t.Errorf("--root %s: %q", other, got)
	}
	t.Setenv("STRATA_ROOT", other)
	if got, _ := complete(t, "inspect", ""); !cmp.Equal(got, []string{"alpine:latest"}) {
		t.Errorf("STRATA_ROOT=%s: %q", other, got)
	}
	missing := filepath.Join(t.TempDir(), "none")
	if got, dir := complete(t, "--root", missing, "inspect", ""); len(got) != 0 || dir != noFiles {
		t.Errorf("a root with no store: %q %s", got, dir)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("completion made a store")
	}
}

func TestCompleteStages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS base\nRUN true\nfrom --platform=$BUILDPLATFORM base as Build\nFROM scratch\nCOPY --from=build / /\nFROM base AS test\n")
	write("Dockerfile.other", "FROM busybox AS one\nFROM one AS two\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"build", dir, "--target", ""}, []string{"base", "Build", "test"}},
		{[]string{"build", dir, "--target", "b"}, []string{"base"}},
		{[]string{"build", "-f", filepath.Join(dir, "Dockerfile.other"), "--target", ""}, []string{"one", "two"}},
		{[]string{"build", dir, "-f", filepath.Join(dir, "Dockerfile.other"), "--no-cache-filter", "t"}, []string{"two"}},
		{[]string{"build", "-f", "-", "--target", ""}, nil},
		{[]string{"build", "-", "--target", ""}, nil},
		{[]string{"build", dir, "--progress", "p"}, []string{"auto", "tty", "plain", "rawjson", "quiet"}}, // the shell keeps p...
	} {
		got, directive := complete(t, tc.args...)
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" || directive != ":4" {
			t.Errorf("strata %q: directive %s; (-want +got):\n%s", tc.args, directive, diff)
		}
	}
	// Before the context is typed, it is the current directory.
	t.Chdir(dir)
	if got, _ := complete(t, "build", "--target", "t"); !cmp.Equal(got, []string{"test"}) {
		t.Errorf("build --target in the context: %q", got)
	}
	if got, directive := complete(t, "build", "--target", "base", ""); len(got) != 0 || directive != ":16" {
		t.Errorf("build's context: %q %s, want directories", got, directive)
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_strata",
		"zsh":  "#compdef strata",
		"fish": "complete -c strata",
	} {
		out, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v, script lacks %q", shell, err, want)
		}
	}
	if _, err := run(t, "completion", "tcsh"); !isUsage(err) {
		t.Errorf("completion tcsh: %v, want a usage error", err)
	}
	if got, _ := complete(t, "completion", ""); !cmp.Equal(got, []string{"bash", "zsh", "fish"}) {
		t.Errorf("completion's shells: %q", got)
	}
}
