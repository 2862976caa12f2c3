package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/strata-build/strata/llb"
)

// A quoted command line reads back, word for word, in a POSIX shell.
func TestShellQuote(t *testing.T) {
	args := []string{"plain", "", "two words", "it's", `"$HOME"`, "a;b|c&d", "tab\there", "new\nline", "*", "--x=y,z", "~user", "back\\slash"}
	q := shellQuote(args)
	if strings.HasPrefix(q, "'plain'") || !strings.Contains(q, " --x=y,z ") {
		t.Errorf("quoted words that need none: %s", q)
	}
	out, err := exec.Command("/bin/sh", "-c", `set -- `+q+`; for a in "$@"; do printf '[%s]' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]")
	}
	if string(out) != want.String() {
		t.Errorf("the shell read back %q, want %q", out, want.String())
	}
}

func TestDescribeMount(t *testing.T) {
	for _, tc := range []struct {
		m    llb.Mount
		want string
	}{
		{llb.Mount{Type: llb.MountCache, Dest: "/root/.cache", Cache: &llb.CacheMount{ID: "go", Sharing: llb.SharingLocked}}, "/root/.cache cache id=go sharing=locked"},
		{llb.Mount{Type: llb.MountSecret, Dest: "/run/secrets/tok", Readonly: true, Secret: &llb.SecretMount{ID: "tok"}}, "/run/secrets/tok secret id=tok ro"},
		{llb.Mount{Type: llb.MountSSH, Dest: "/run/ssh", SSH: &llb.SSHMount{ID: "default"}}, "/run/ssh ssh id=default"},
		{llb.Mount{Type: llb.MountBind, Dest: "/src", Selector: "app", Readonly: true}, "/src bind source=app ro"},
		{llb.Mount{Type: llb.MountTmpfs, Dest: "/tmp"}, "/tmp tmpfs (empty again in a shell)"},
	} {
		if got := describeMount(tc.m); got != tc.want {
			t.Errorf("describeMount(%+v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}
