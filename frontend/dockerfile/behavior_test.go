package dockerfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata/llb"
)

func TestOnlyReachableStagesResolved(t *testing.T) {
	r := &fakeResolver{}
	df := "FROM golang:1.22 AS build\nRUN go build\nFROM nosuchimage AS unused\nFROM busybox\nCOPY --from=build /x /x\n"
	res, err := convertString(df, func(o *Options) { o.Resolver = r })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"golang:1.22 linux/amd64", "busybox linux/amd64"}
	if !slices.Equal(r.calls, want) {
		t.Fatalf("resolver calls %q, want %q", r.calls, want)
	}
	def, err := llb.NewDefinition(res.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Vertices) != 4 {
		t.Fatalf("got %d vertices, want 4 (golang, run, busybox, copy)", len(def.Vertices))
	}
}

func TestNoCacheFilter(t *testing.T) {
	df := "FROM busybox AS a\nRUN one\nFROM busybox AS b\nCOPY --from=a /x /x\nRUN two\n"
	res, err := convertString(df, func(o *Options) { o.NoCacheFilter = []string{"b"} })
	if err != nil {
		t.Fatal(err)
	}
	def, _ := llb.NewDefinition(res.Root)
	for _, v := range def.Vertices {
		inB := strings.HasPrefix(v.Meta.Name, "[b ")
		if v.Meta.IgnoreCache != inB {
			t.Errorf("%q: IgnoreCache=%v, want %v", v.Meta.Name, v.Meta.IgnoreCache, inB)
		}
	}
}

func TestConfigInheritance(t *testing.T) {
	df := "FROM nopath\nENTRYPOINT [\"/new\"]\nLABEL x=y\n"
	res, err := convertString(df, func(o *Options) { o.Labels = map[string]string{"cli": "1"} })
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Image.Config
	if cfg.Cmd != nil {
		t.Errorf("inherited CMD kept after ENTRYPOINT: %q", cfg.Cmd)
	}
	if cfg.User != "nobody" {
		t.Errorf("user %q, want inherited nobody", cfg.User)
	}
	if !slices.Equal(cfg.Env, []string{"PATH=" + defaultPathEnv}) {
		t.Errorf("env %q, want the default PATH", cfg.Env)
	}
	if cfg.Labels["base"] != "yes" || cfg.Labels["x"] != "y" || cfg.Labels["cli"] != "1" {
		t.Errorf("labels %v", cfg.Labels)
	}
	if len(res.Image.RootFS.DiffIDs) != 1 || len(res.Image.History) != 4 {
		t.Errorf("rootfs %v, %d history entries, want base layer and 2+2 entries", res.Image.RootFS.DiffIDs, len(res.Image.History))
	}
}

func TestProxyArgsStayOutOfHistoryAndKeys(t *testing.T) {
	conv := func(proxy string) *Result {
		res, err := convertString("FROM busybox\nRUN true\n", func(o *Options) {
			o.BuildArgs = map[string]string{"HTTPS_PROXY": proxy, "UNUSED": "x"}
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := conv("http://p:1")
	exec := res.Root.Op.(*llb.ExecOp)
	if !slices.Contains(exec.ProxyEnv, "HTTPS_PROXY=http://p:1") || slices.ContainsFunc(exec.Env, func(s string) bool {
		return strings.HasPrefix(s, "UNUSED=") || strings.HasPrefix(s, "HTTPS_PROXY=")
	}) {
		t.Errorf("exec env %q, proxy env %q", exec.Env, exec.ProxyEnv)
	}
	if other := conv("http://q:2"); other.Root.Digest() != res.Root.Digest() {
		t.Error("a proxy value changed the step's digest (and so its cache key)")
	}
	last := res.Image.History[len(res.Image.History)-1]
	if last.CreatedBy != "RUN /bin/sh -c true # buildkit" || last.EmptyLayer {
		t.Errorf("history %+v", last)
	}
}

func TestContextVertexShared(t *testing.T) {
	res, err := convertString("FROM busybox\nCOPY a /a\nRUN --mount=type=bind,target=/src true\nADD b /b\n", func(o *Options) {
		o.ContextExcludes = []string{"*.log", "!keep.log"}
	})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := llb.NewDefinition(res.Root)
	n := 0
	for _, v := range def.Vertices {
		if src, ok := v.Op.(*llb.SourceOp); ok && src.Source == llb.SourceLocal {
			n++
			if !slices.Equal(src.Local.ExcludePatterns, []string{"*.log", "!keep.log"}) {
				t.Errorf("excludes %q", src.Local.ExcludePatterns)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d context vertices, want 1", n)
	}
}
