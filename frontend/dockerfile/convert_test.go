package dockerfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

var update = flag.Bool("update", false, "rewrite golden files")

var errNotFound = errors.New("not found")

// fakeResolver knows a few busybox-like images, keyed by normalized name.
type fakeResolver struct {
	calls []string
}

func normalizeRef(ref string) string {
	if !strings.Contains(ref, "/") {
		ref = "library/" + ref
	}
	if first, _, _ := strings.Cut(ref, "/"); !strings.ContainsAny(first, ".:") && first != "localhost" {
		ref = "docker.io/" + ref
	}
	if i := strings.LastIndex(ref, "/"); !strings.Contains(ref[i:], ":") && !strings.Contains(ref, "@") {
		ref += ":latest"
	}
	return ref
}

func (r *fakeResolver) ResolveImage(_ context.Context, ref string, p ocispec.Platform) (ResolvedImage, error) {
	r.calls = append(r.calls, ref+" "+formatPlatform(p))
	n := normalizeRef(ref)
	base := ocispec.Image{Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}}
	base.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(n + " layer")}}
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	base.Created = &created
	base.History = []ocispec.History{{Created: &created, CreatedBy: "/bin/sh -c #(nop) ADD file:busybox in / "}, {Created: &created, CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true}}
	var raw []byte
	switch n {
	case "docker.io/library/busybox:latest", "docker.io/library/busybox:1.36", "docker.io/library/alpine:latest":
		base.Config = ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}}
	case "docker.io/library/golang:1.22":
		base.Config = ocispec.ImageConfig{Env: []string{"PATH=/go/bin:/usr/local/go/bin:/usr/bin:/bin", "GOPATH=/go"}, WorkingDir: "/go", Cmd: []string{"bash"}}
	case "docker.io/library/nopath:latest":
		base.Config = ocispec.ImageConfig{User: "nobody", Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Labels: map[string]string{"base": "yes"}}
	case "docker.io/library/onbuild:latest":
		base.Config = ocispec.ImageConfig{Env: []string{"PATH=/bin"}}
		raw = []byte(`{"config":{"Env":["PATH=/bin"],"OnBuild":["RUN echo triggered","COPY . /onbuild/"],"Healthcheck":{"Test":["CMD","true"]},"Shell":["/bin/ash","-c"]}}`)
	case "docker.io/library/empty:latest":
		base.RootFS.DiffIDs = nil
		base.History = nil
	case "registry.local:5000/team/tool:v1":
		base.Config = ocispec.ImageConfig{Env: []string{"PATH=/opt/bin"}}
	default:
		return ResolvedImage{}, fmt.Errorf("failed to resolve source metadata for %s: %w", n, errNotFound)
	}
	return ResolvedImage{Ref: n, Digest: digest.FromString(n + " " + formatPlatform(p)), Config: base, ConfigJSON: raw}, nil
}

// caseOptions reads "# test: key=value ..." lines at the top of a case.
func caseOptions(t *testing.T, df []byte) Options {
	t.Helper()
	opts := Options{Dockerfile: df, Filename: "Dockerfile", Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Resolver: &fakeResolver{}}
	for _, line := range strings.Split(string(df), "\n") {
		rest, ok := strings.CutPrefix(line, "# test:")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "target":
				opts.Target = v
			case "build-arg":
				if opts.BuildArgs == nil {
					opts.BuildArgs = map[string]string{}
				}
				bk, bv, _ := strings.Cut(v, "=")
				opts.BuildArgs[bk] = bv
			case "label":
				if opts.Labels == nil {
					opts.Labels = map[string]string{}
				}
				lk, lv, _ := strings.Cut(v, "=")
				opts.Labels[lk] = lv
			case "platform":
				p, err := parsePlatform(v)
				if err != nil {
					t.Fatal(err)
				}
				opts.Platform = p
			case "exclude":
				opts.ContextExcludes = append(opts.ContextExcludes, v)
			case "no-cache":
				opts.NoCacheFilter = append(opts.NoCacheFilter, v)
			case "epoch":
				tm := time.Unix(0, 0).UTC()
				opts.SourceDateEpoch = &tm
			default:
				t.Fatalf("unknown test option %q", k)
			}
		}
	}
	return opts
}

// render prints a result for a golden file: the graph with names and
// locations, the image config, the warnings.
func render(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	def, err := llb.NewDefinition(res.Root)
	if err != nil {
		t.Fatalf("definition: %v", err)
	}
	b.WriteString("== graph\n")
	if err := def.Format(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("== meta\n")
	for i, v := range def.Vertices {
		fmt.Fprintf(&b, "v%d step=%q locations=%v ignore-cache=%v\n", i, v.Meta.StepID, v.Meta.Locations, v.Meta.IgnoreCache)
	}
	b.WriteString("== image\n")
	img, err := json.MarshalIndent(res.DockerImage(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b.Write(img)
	b.WriteString("\n== warnings\n")
	for _, w := range res.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/frontend/*.Dockerfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".Dockerfile")
		t.Run(name, func(t *testing.T) {
			df, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(context.Background(), caseOptions(t, df))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			got := render(t, res)
			golden := strings.TrimSuffix(f, ".Dockerfile") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("golden mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
