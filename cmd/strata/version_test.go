package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadVersion(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	stamped := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		name   string
		linked string
		info   *debug.BuildInfo
		ok     bool
		want   versionInfo
		short  string
	}{
		{"no build info", "dev", nil, false, versionInfo{Version: "dev", GoVersion: runtime.Version()}, "dev"},
		{"stamped", "dev", stamped, true, versionInfo{Version: "dev", Commit: rev, Modified: true, GoVersion: "go1.99.1"}, "dev, commit 0123456789ab (modified)"},
		{"linked", "v1.2.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.1.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}}, true,
			versionInfo{Version: "v1.2.0", Commit: rev, GoVersion: runtime.Version()}, "v1.2.0, commit 0123456789ab"},
		{"go install", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.1.0"}}, true, versionInfo{Version: "v1.1.0", GoVersion: runtime.Version()}, "v1.1.0"},
	} {
		tc.want.Os, tc.want.Arch = runtime.GOOS, runtime.GOARCH
		got := readVersion(tc.linked, tc.info, tc.ok)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		if s := got.short(); s != tc.short {
			t.Errorf("%s: short %q, want %q", tc.name, s, tc.short)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	v := currentVersion()
	for _, want := range []string{"Version:    " + v.Version + "\n", "Go version: " + v.GoVersion + "\n", "OS/Arch:    " + runtime.GOOS + "/" + runtime.GOARCH + "\n", "Git commit: "} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "version", "--format", "{{.Os}}/{{.Arch}} {{.GoVersion}}")
	if want := runtime.GOOS + "/" + runtime.GOARCH + " " + v.GoVersion + "\n"; err != nil || out != want {
		t.Errorf("version --format: %q, %v; want %q", out, err, want)
	}
	out, err = run(t, "version", "--format", "json")
	var got versionInfo
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got != v {
		t.Errorf("version --format json: %q, %v", out, err)
	}
	if out, err = run(t, "--version"); err != nil || out != "strata version "+v.short()+"\n" {
		t.Errorf("--version: %q, %v", out, err)
	}
}
