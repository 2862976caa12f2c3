package dockerfile

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// defaultPathEnv is the PATH a stage gets when its image sets none.
const defaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envList is an ordered set of variables: replacing a key keeps its place.
// It satisfies shell.EnvGetter for variable expansion.
type envList struct {
	keys []string
	vals map[string]string
}

var _ shell.EnvGetter = (*envList)(nil)

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func envFromSlice(kvs []string) *envList {
	e := newEnvList()
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		e.set(k, v)
	}
	return e
}

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) Keys() []string { return slices.Clone(e.keys) }

func (e *envList) clone() *envList {
	c := newEnvList()
	for _, k := range e.keys {
		c.set(k, e.vals[k])
	}
	return c
}

// sorted returns "K=V" entries sorted by key, the order an ExecOp carries.
func (e *envList) sorted() []string {
	keys := slices.Sorted(slices.Values(e.keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// addEnv sets k=v in an image Env slice, replacing an existing key in place.
func addEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); key == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// proxyArgs are the predefined build args a RUN sees without an ARG
// declaration; they never enter the image history.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// normalizePlatform fills an empty platform with linux and the running
// architecture, and maps architecture aliases to their OCI names.
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	p.OS = strings.ToLower(p.OS)
	switch strings.ToLower(p.Architecture) {
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "v8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "386":
		p.Architecture = "386"
	default:
		p.Architecture = strings.ToLower(p.Architecture)
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	return p
}

// parsePlatform parses "os[/arch[/variant]]".
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return normalizePlatform(p), nil
}

func formatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// defaultArgs are the automatic platform args every Dockerfile may use.
func defaultArgs(p ocispec.Platform, overrides map[string]string, target string) *envList {
	if target == "" {
		target = "default"
	}
	e := newEnvList()
	for _, kv := range [...][2]string{
		{"BUILDPLATFORM", formatPlatform(p)},
		{"BUILDOS", p.OS},
		{"BUILDOSVERSION", p.OSVersion},
		{"BUILDARCH", p.Architecture},
		{"BUILDVARIANT", p.Variant},
		{"TARGETPLATFORM", formatPlatform(p)},
		{"TARGETOS", p.OS},
		{"TARGETOSVERSION", p.OSVersion},
		{"TARGETARCH", p.Architecture},
		{"TARGETVARIANT", p.Variant},
		{"TARGETSTAGE", target},
	} {
		v := kv[1]
		if ov, ok := overrides[kv[0]]; ok {
			v = ov
		}
		e.set(kv[0], v)
	}
	return e
}
