package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/llb"
)

// isUsage reports whether err is a usage error (exit code 2).
func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestParseOutputs(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    []exporter.Exporter
		wantErr string
	}{
		{nil, []exporter.Exporter{exporter.ImageStore{}}, ""},
		{[]string{"type=image"}, []exporter.Exporter{exporter.ImageStore{}}, ""},
		{[]string{"type=oci,dest=a.tar"}, []exporter.Exporter{exporter.OCIArchive{Path: "a.tar"}}, ""},
		{[]string{"type=oci,dest=dir,tar=false"}, []exporter.Exporter{exporter.OCILayout{Dir: "dir"}}, ""},
		{[]string{"type=docker,dest=d.tar", "type=tar,dest=-"}, []exporter.Exporter{exporter.DockerArchive{Path: "d.tar"}, exporter.RootfsTar{Path: "-"}}, ""},
		{[]string{"out"}, []exporter.Exporter{exporter.LocalDir{Dir: "out"}}, ""},
		{[]string{"-"}, []exporter.Exporter{exporter.RootfsTar{Path: "-"}}, ""},
		{[]string{" TYPE = local ,dest=x"}, nil, `unknown output type " local "`},
		{[]string{"type=local,dest=x"}, []exporter.Exporter{exporter.LocalDir{Dir: "x"}}, ""},
		{[]string{`type=local,"dest=a,b"`}, []exporter.Exporter{exporter.LocalDir{Dir: "a,b"}}, ""},
		{[]string{"type=oci"}, nil, "type=oci needs dest=FILE"},
		{[]string{"type=docker"}, nil, "type=docker needs dest=FILE"},
		{[]string{"type=local"}, nil, "type=local needs dest=DIR"},
		{[]string{"type=tar"}, nil, "type=tar needs dest=FILE"},
		{[]string{"dest=x"}, nil, "missing type="},
		{[]string{"type=zip,dest=x"}, nil, `unknown output type "zip"`},
		{[]string{"type=oci,dest"}, nil, `"dest" is not KEY=VALUE`},
		{[]string{`type=oci,"dest=x`}, nil, "-o type=oci"},
	} {
		got, err := parseOutputs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsage(err) {
				t.Errorf("parseOutputs(%q) = %v, want a usage error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseOutputs(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"a=1", map[string]string{"a": "1"}, false},
		{"A=1,b=x=y", map[string]string{"a": "1", "b": "x=y"}, false},
		{`"a=1,2",b=`, map[string]string{"a": "1,2", "b": ""}, false},
		{"a", nil, true},
		{"=1", nil, true},
		{"a=1,,b=2", nil, true},
	} {
		got, err := splitOptions("--x", tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitOptions(%q) = %v, %v; want %v (error %t)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseKV(t *testing.T) {
	t.Setenv("STRATA_TEST_FROM_ENV", "env-value")
	for _, tc := range []struct {
		in      []string
		fromEnv bool
		want    map[string]string
		wantErr string
	}{
		{[]string{"A=1", "B=", "C=x=y"}, true, map[string]string{"A": "1", "B": "", "C": "x=y"}, ""},
		{[]string{"STRATA_TEST_FROM_ENV"}, true, map[string]string{"STRATA_TEST_FROM_ENV": "env-value"}, ""},
		{[]string{"STRATA_TEST_UNSET_VAR"}, true, map[string]string{}, ""},
		{[]string{"A=1", "A=2"}, true, map[string]string{"A": "2"}, ""},
		{[]string{"=1"}, true, nil, "empty key"},
		{[]string{"LABEL"}, false, nil, "want KEY=VALUE"},
	} {
		got, err := parseKV(tc.in, "--build-arg", tc.fromEnv)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsage(err) {
				t.Errorf("parseKV(%q) = %v, want usage error %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseKV(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok.txt")
	if err := os.WriteFile(file, []byte("file-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRATA_TEST_SECRET", "env-secret")
	t.Setenv("MYID", "by-id")
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
		usage   bool
	}{
		{"id=a,src=" + file, map[string]string{"a": "file-secret"}, "", false},
		{"id=a,source=" + file, map[string]string{"a": "file-secret"}, "", false},
		{"src=" + file, map[string]string{"tok.txt": "file-secret"}, "", false},
		{"type=file,id=a,src=" + file, map[string]string{"a": "file-secret"}, "", false},
		{"id=e,env=STRATA_TEST_SECRET", map[string]string{"e": "env-secret"}, "", false},
		{"env=STRATA_TEST_SECRET", map[string]string{"STRATA_TEST_SECRET": "env-secret"}, "", false},
		{"type=env,id=e,src=STRATA_TEST_SECRET", map[string]string{"e": "env-secret"}, "", false},
		{"id=MYID", map[string]string{"MYID": "by-id"}, "", false},
		{"id=a,env=STRATA_TEST_NOT_SET", nil, "environment variable STRATA_TEST_NOT_SET is not set", false},
		{"id=a,src=" + filepath.Join(dir, "missing"), nil, `read secret "a"`, false},
		{"id=a", nil, "no src=FILE", true},
		{"type=ssh,id=a,src=x", nil, `unknown type "ssh"`, true},
		{"type=env", nil, "no id", true},
		{"id", nil, "is not KEY=VALUE", true},
	} {
		got, err := parseSecrets([]string{tc.in})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || isUsage(err) != tc.usage {
				t.Errorf("parseSecrets(%q) = %v, want error %q (usage %t)", tc.in, err, tc.wantErr, tc.usage)
			}
			continue
		}
		want := map[string][]byte{}
		for k, v := range tc.want {
			want[k] = []byte(v)
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseSecrets(%q) = %q, %v; want %q", tc.in, got, err, want)
		}
	}
}

func TestParseSSH(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	file := filepath.Join(dir, "id_rsa")
	if err := os.WriteFile(file, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"default", map[string]string{"default": sock}, ""},
		{"deploy=" + sock, map[string]string{"deploy": sock}, ""},
		{"=" + sock, nil, "no id"},
		{"k=" + file, nil, "is not an agent socket"},
		{"k=" + file + "," + file, nil, "key files are not supported"},
		{"k=" + filepath.Join(dir, "nope"), nil, "no such file"},
	} {
		got, err := parseSSH([]string{tc.in})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseSSH(%q) = %v, want error %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseSSH(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := parseSSH([]string{"default"}); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Errorf("parseSSH(default) without SSH_AUTH_SOCK = %v", err)
	}
}

func TestPullPlatform(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ocispec.Platform
		wantErr bool
	}{
		{"", defaultPlatform(), false},
		{"linux/arm64", ocispec.Platform{OS: "linux", Architecture: "arm64"}, false},
		{"linux/arm/v7", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, false},
		{"linux", ocispec.Platform{}, true},
		{"linux/", ocispec.Platform{}, true},
		{"/amd64", ocispec.Platform{}, true},
		{"linux/arm/v7/x", ocispec.Platform{}, true},
	} {
		got, err := pullPlatform(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("pullPlatform(%q) = %v, %v; want %v (error %t)", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !isUsage(err) {
			t.Errorf("pullPlatform(%q): %v is not a usage error", tc.in, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"512", 512, false},
		{"10MB", 10e6, false},
		{"1.5GiB", 3 << 29, false},
		{"2g", 2 << 30, false},
		{" 1k ", 1024, false},
		{"-1", 0, true},
		{"ten", 0, true},
		{"", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d (error %t)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// The build flags become typed options; every bad one is a usage error
// found before a store is opened or a Dockerfile read.
func TestBuildFlagsOptions(t *testing.T) {
	ok := func(f *buildFlags) *buildFlags {
		if f.progress == "" {
			f.progress = "auto"
		}
		if f.network == "" {
			f.network = "default"
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		flags   *buildFlags
		check   func(t *testing.T, o builder.Options)
		wantErr string
	}{
		{name: "defaults", flags: ok(&buildFlags{}), check: func(t *testing.T, o builder.Options) {
			if o.Network != llb.NetDefault || len(o.Exports) != 1 || o.ContextDir != "ctx" {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "network and hosts", flags: ok(&buildFlags{network: "none", addHosts: []string{"a:10.0.0.1", "b=::1", "c:::2"}}), check: func(t *testing.T, o builder.Options) {
			want := []executor.HostIP{{Host: "a", IP: "10.0.0.1"}, {Host: "b", IP: "::1"}, {Host: "c", IP: "::2"}}
			if o.Network != llb.NetNone || !reflect.DeepEqual(o.ExtraHosts, want) {
				t.Errorf("network %v hosts %v", o.Network, o.ExtraHosts)
			}
		}},
		{name: "allow", flags: ok(&buildFlags{allow: []string{"security.insecure", "network.host"}}), check: func(t *testing.T, o builder.Options) {
			if !o.AllowInsecure {
				t.Error("security.insecure not allowed")
			}
		}},
		{name: "runc", flags: ok(&buildFlags{runtime: "runc"}), check: func(t *testing.T, o builder.Options) {
			if o.Runtime != "runc" {
				t.Errorf("runtime %q", o.Runtime)
			}
		}},
		{name: "stdin dockerfile", flags: ok(&buildFlags{file: "-"}), check: func(t *testing.T, o builder.Options) {
			if o.Dockerfile != "" {
				t.Errorf("dockerfile %q", o.Dockerfile)
			}
		}},
		{name: "bad tag", flags: ok(&buildFlags{tags: []string{"ok:1", "Bad:::tag"}}), wantErr: `invalid tag "Bad:::tag"`},
		{name: "upper-case repo", flags: ok(&buildFlags{tags: []string{"App"}}), wantErr: `invalid tag "App"`},
		{name: "bad network", flags: ok(&buildFlags{network: "bridge"}), wantErr: `unknown mode "bridge"`},
		{name: "bad host", flags: ok(&buildFlags{addHosts: []string{"a:notanip"}}), wantErr: "want HOST:IP"},
		{name: "bad allow", flags: ok(&buildFlags{allow: []string{"device"}}), wantErr: "unknown entitlement"},
		{name: "bad progress", flags: &buildFlags{progress: "fancy", network: "default"}, wantErr: `unknown mode "fancy"`},
		{name: "bad runtime", flags: ok(&buildFlags{runtime: "crun"}), wantErr: `unknown runtime "crun"`},
		{name: "bad jobs", flags: ok(&buildFlags{jobs: -1}), wantErr: "--jobs -1"},
		{name: "bad output", flags: ok(&buildFlags{outputs: []string{"type=oci"}}), wantErr: "needs dest"},
		{name: "bad label", flags: ok(&buildFlags{labels: []string{"x"}}), wantErr: "want KEY=VALUE"},
		{name: "on-error shell", flags: ok(&buildFlags{onError: "shell", onErrorShell: "/bin/bash", onErrorShellSet: true}), check: func(t *testing.T, o builder.Options) {}},
		{name: "bad on-error", flags: ok(&buildFlags{onError: "pause"}), wantErr: `--on-error: unknown value "pause" (fail, shell)`},
		{name: "on-error-shell alone", flags: ok(&buildFlags{onError: "fail", onErrorShell: "/bin/bash", onErrorShellSet: true}), wantErr: "--on-error-shell needs --on-error=shell"},
		{name: "empty on-error-shell", flags: ok(&buildFlags{onError: "shell", onErrorShellSet: true}), wantErr: "--on-error-shell: no shell given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.flags.options("ctx")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsage(err) {
					t.Fatalf("options() = %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestSourceDateEpochFromEnvironment(t *testing.T) {
	f := &buildFlags{progress: "auto", network: "default"}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	o, err := f.options("ctx")
	if err != nil || o.BuildArgs["SOURCE_DATE_EPOCH"] != "1700000000" {
		t.Errorf("SOURCE_DATE_EPOCH from the environment: %v, %v", o.BuildArgs, err)
	}
	f.buildArgs = []string{"SOURCE_DATE_EPOCH=5"}
	o, err = f.options("ctx")
	if err != nil || o.BuildArgs["SOURCE_DATE_EPOCH"] != "5" {
		t.Errorf("--build-arg SOURCE_DATE_EPOCH=5 should win over the environment: %v, %v", o.BuildArgs, err)
	}
}

// A bad -t stops `strata build` with exit code 2 before anything is made:
// no store is created, no Dockerfile is read.
func TestBuildRejectsBadTagBeforeWork(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	cmd := newRoot()
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	cmd.SetOut(&stderr)
	cmd.SetArgs([]string{"--root", root, "build", "-t", "no spaces allowed", filepath.Join(t.TempDir(), "missing-context")})
	err := cmd.Execute()
	if err == nil || !isUsage(err) || !strings.Contains(err.Error(), `invalid tag "no spaces allowed"`) {
		t.Fatalf("build with a bad tag: %v, want a usage error naming the tag", err)
	}
	if _, serr := os.Stat(root); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the store was opened (%v) before the tag was checked", serr)
	}
}

func TestUsageErrorsOfOtherCommands(t *testing.T) {
	for _, args := range [][]string{
		{"tag", "a"},
		{"tag", "a", "Bad Name"},
		{"import", "x.tar", "Bad Name"},
		{"pull", "--platform", "linux", "busybox"},
		{"prune", "--keep-storage", "lots"},
		{"prune", "--filter", "label=x"},
		{"build", "--no-such-flag", "."},
		{"images", "--filter", "color=red"},
		{"images", "--format", "{{.Nope"},
		{"images", "a", "b"},
	} {
		root := filepath.Join(t.TempDir(), "store")
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetErr(&out)
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"--root", root}, args...))
		if err := cmd.Execute(); !isUsage(err) {
			t.Errorf("strata %s: %v, want a usage error", strings.Join(args, " "), err)
		}
		if _, serr := os.Stat(root); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("strata %s opened the store before checking its arguments", strings.Join(args, " "))
		}
	}
}

func TestParseCacheSpecs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		export  bool
		want    builder.CacheSpec
		wantErr string
	}{
		{in: "127.0.0.1:5000/app:cache", want: builder.CacheSpec{Type: "registry", Ref: "127.0.0.1:5000/app:cache"}},
		{in: "type=registry,ref=app", want: builder.CacheSpec{Type: "registry", Ref: "docker.io/library/app:latest"}},
		{in: "type=registry,ref=r/c:1,mode=max,ignore-error=true,registry.insecure=true", export: true,
			want: builder.CacheSpec{Type: "registry", Ref: "docker.io/r/c:1", Mode: "max", IgnoreError: true, Insecure: true}},
		{in: "type=local,src=/c", want: builder.CacheSpec{Type: "local", Dir: "/c"}},
		{in: "type=local,dest=/c,tag=v2", export: true, want: builder.CacheSpec{Type: "local", Dir: "/c", Tag: "v2"}},
		{in: "type=inline", export: true, want: builder.CacheSpec{Type: "inline"}},
		{in: "type=local,dest=/c", wantErr: "needs src=DIR"},
		{in: "type=local,src=/c", export: true, wantErr: "needs dest=DIR"},
		{in: "type=registry", wantErr: "needs ref=NAME"},
		{in: "type=registry,ref=Bad Name", wantErr: "invalid ref"},
		{in: "type=inline", wantErr: "imported with type=registry"},
		{in: "type=inline,mode=max", export: true, wantErr: "mode=min"},
		{in: "type=registry,ref=a,mode=all", export: true, wantErr: `unknown mode "all"`},
		{in: "type=registry,ref=a,ignore-error=maybe", export: true, wantErr: "not a boolean"},
		{in: "type=s3,ref=a", wantErr: `unknown cache type "s3"`},
		{in: "ref=a", wantErr: "missing type="},
	} {
		got, err := parseCacheSpecs([]string{tc.in}, tc.export)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsage(err) {
				t.Errorf("parseCacheSpecs(%q, %t) = %v, want usage error %q", tc.in, tc.export, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("parseCacheSpecs(%q, %t) = %+v, %v; want %+v", tc.in, tc.export, got, err, tc.want)
		}
	}
}

func TestParseCompression(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    builder.Compression
		force   bool
		wantErr string
	}{
		{in: nil},
		{in: []string{"out-dir"}},
		{in: []string{"type=oci,dest=o.tar,compression=zstd"}, want: builder.Compression{Type: "zstd"}},
		{in: []string{"type=registry,name=r/a,compression=zstd,compression-level=3,force-compression=true"}, want: builder.Compression{Type: "zstd", Level: 3}, force: true},
		{in: []string{"type=oci,dest=o.tar,compression=zstd", "type=docker,dest=d.tar"}, want: builder.Compression{Type: "zstd"}},
		{in: []string{"type=image,compression=uncompressed", "type=oci,dest=o.tar,compression=uncompressed"}, want: builder.Compression{Type: "uncompressed"}},
		{in: []string{"type=oci,dest=o.tar,compression=zstd", "type=docker,dest=d.tar,compression=gzip"}, wantErr: "another compression"},
		{in: []string{"type=local,dest=d,compression=zstd"}, wantErr: "applies to image outputs"},
		{in: []string{"type=oci,dest=o.tar,compression=brotli"}, wantErr: "unknown compression"},
		{in: []string{"type=oci,dest=o.tar,compression=gzip,compression-level=x"}, wantErr: "not a number"},
		{in: []string{"type=oci,dest=o.tar,compression=gzip,compression-level=10"}, wantErr: "1 to 9"},
	} {
		c, force, err := parseCompression(tc.in)
		if tc.wantErr != "" {
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseCompression(%q) = %v, want a usage error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c != tc.want || force != tc.force {
			t.Errorf("parseCompression(%q) = %+v, %v, %v; want %+v, %v", tc.in, c, force, err, tc.want, tc.force)
		}
	}
}
