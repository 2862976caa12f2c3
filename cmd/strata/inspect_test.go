package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

// A config as docker's classic builder wrote them: fields of the
// container config docker's OCI type lacks, the container it was
// committed from, a top-level comment.
const classicConfig = `{
  "architecture": "arm64", "variant": "v8", "os": "linux", "os.features": ["f1"],
  "created": "2024-05-06T07:08:09.5Z", "author": "someone",
  "comment": "a comment", "docker_version": "20.10.7", "parent": "sha256:0123",
  "container": "c0ffee",
  "container_config": {"Hostname": "c0ffee", "Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"]},
  "config": {"Hostname": "", "AttachStdin": false, "Env": ["PATH=/bin", "A=<b>"], "Cmd": ["sh"],
             "Labels": {"tier": "web"}, "Healthcheck": {"Test": ["CMD", "true"], "Retries": 3}},
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "history": [{"created": "2024-05-06T07:08:09.5Z", "created_by": "ADD rootfs /"}, {"created_by": "CMD [\"sh\"]", "empty_layer": true}]
}`

func testInspected(t *testing.T) inspectImage {
	t.Helper()
	cfgDigest := digest.FromString(classicConfig)
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("index"), Size: 300}
	mf := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest"), Size: 200}
	res := &images.Resolved{
		Name:         "docker.io/library/app:1",
		ManifestDesc: mf,
		Manifest: ocispec.Manifest{
			Config: ocispec.Descriptor{Digest: cfgDigest, Size: 1000},
			Layers: []ocispec.Descriptor{{Size: 2000}, {Size: 30}},
		},
		ConfigBytes: []byte(classicConfig),
	}
	tagged := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	img := store.Image{Name: "docker.io/library/app:1", Target: target, Updated: tagged}
	list := []store.Summary{
		{Image: store.Image{Name: "docker.io/library/app@" + target.Digest.String(), Target: target}, ID: cfgDigest},
		{Image: img, ID: cfgDigest},
		{Image: store.Image{Name: "docker.io/library/other:2", Target: mf}, ID: cfgDigest},
		{Image: store.Image{Name: "docker.io/library/unrelated:1", Target: mf}, ID: digest.FromString("x")},
	}
	ii, err := newInspectImage(img, res, list)
	if err != nil {
		t.Fatal(err)
	}
	return ii
}

// The JSON of inspect reads with the jq paths of docker image inspect's,
// and keeps what docker has no field for.
func TestInspectJSONShape(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSONIndented(&b, []inspectImage{testInspected(t)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n    {\n        \"Id\": ") || !strings.Contains(b.String(), `"A=<b>"`) {
		t.Errorf("not indented by four spaces, or HTML-escaped:\n%s", b.String())
	}
	var doc []map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	cfgDigest := digest.FromString(classicConfig).String()
	for _, tc := range []struct {
		path string // as jq's .[0].PATH
		want any
	}{
		{"Id", cfgDigest},
		{"RepoTags", []any{"app:1", "other:2"}},
		{"RepoDigests", []any{"app@" + digest.FromString("index").String(), "other@" + digest.FromString("manifest").String()}},
		{"Created", "2024-05-06T07:08:09.5Z"},
		{"Author", "someone"},
		{"Comment", "a comment"},
		{"DockerVersion", "20.10.7"},
		{"Parent", "sha256:0123"},
		{"Config.Env", []any{"PATH=/bin", "A=<b>"}},
		{"Config.Cmd", []any{"sh"}},
		{"Config.Labels.tier", "web"},
		{"Config.Healthcheck.Retries", 3.0},
		{"Config.Hostname", ""},
		{"Config.AttachStdin", false},
		{"Architecture", "arm64"},
		{"Variant", "v8"},
		{"Os", "linux"},
		{"Size", 3030.0},
		{"RootFS.Type", "layers"},
		{"RootFS.Layers", []any{"sha256:1111111111111111111111111111111111111111111111111111111111111111"}},
		{"Metadata.LastTagTime", "2025-01-02T03:04:05Z"},
		{"Descriptor.digest", digest.FromString("index").String()},
		{"Descriptor.mediaType", ocispec.MediaTypeImageIndex},
		{"Manifest.digest", digest.FromString("manifest").String()},
		{"OsFeatures", []any{"f1"}},
		{"History.1.created_by", `CMD ["sh"]`},
		{"History.1.empty_layer", true},
		{"Container", "c0ffee"},
		{"ContainerConfig.Hostname", "c0ffee"},
	} {
		var v any = doc[0]
		for _, k := range strings.Split(tc.path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				i := int(k[0] - '0')
				v = x[i]
			default:
				v = nil
			}
		}
		if diff := cmp.Diff(tc.want, v); diff != "" {
			t.Errorf(".[0].%s (-want +got):\n%s", tc.path, diff)
		}
	}
	// Docker's fields come first, in docker's order.
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(b.Bytes()))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 2 && dec.More() {
				keys = append(keys, tok)
				// skip the value
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	want := []string{"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion", "Author", "Config", "Architecture", "Variant", "Os", "Size", "RootFS", "Metadata", "Descriptor", "Manifest", "OsFeatures", "History", "Container", "ContainerConfig"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestInspectTemplates(t *testing.T) {
	ii := testInspected(t)
	cfgDigest := digest.FromString(classicConfig).String()
	for _, tc := range []struct {
		format, want string
	}{
		{"{{.Id}}", cfgDigest},
		{"{{.ID}}", cfgDigest},
		{"{{.Os}}/{{.Architecture}}", "linux/arm64"},
		{"{{json .Config.Env}}", `["PATH=/bin","A=<b>"]`},
		{"{{json .Config}}", `{"Env":["PATH=/bin","A=<b>"],"Cmd":["sh"],"Labels":{"tier":"web"},"Healthcheck":{"Test":["CMD","true"],"Retries":3},"AttachStdin":false,"Hostname":""}`},
		{"{{.Config.Cmd}}", "[sh]"},
		{`{{index .Config.Labels "tier"}}`, "web"},
		{"{{range .RepoTags}}{{.}} {{end}}", "app:1 other:2 "},
		{`{{join .RepoTags ","}}`, "app:1,other:2"},
		{"{{.Size}}", "3030"},
		{"{{.RootFS.Layers}}", "[sha256:1111111111111111111111111111111111111111111111111111111111111111]"},
		{"{{.Config.Hostname}}|{{.Config.AttachStdin}}", "|false"},
		{"{{.Descriptor.mediaType}}", ocispec.MediaTypeImageIndex},
		{"{{.Manifest.Digest}}", digest.FromString("manifest").String()},
		{`{{upper .Os}}\t{{.Created}}`, "LINUX\t2024-05-06T07:08:09.5Z"},
	} {
		fm, err := parseFormat(tc.format, "", nil)
		if err != nil {
			t.Errorf("%s: %v", tc.format, err)
			continue
		}
		var b bytes.Buffer
		if err := writeInspectTemplate(&b, fm, []inspectImage{ii, ii}); err != nil {
			t.Errorf("%s: %v", tc.format, err)
			continue
		}
		if diff := cmp.Diff(tc.want+"\n"+tc.want+"\n", b.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.format, diff)
		}
	}
	fm, err := parseFormat("{{.NoSuchField}}", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeInspectTemplate(&b, fm, []inspectImage{ii}); err == nil || b.Len() != 0 {
		t.Errorf("a missing field: %v, output %q; want an error and no output", err, b.String())
	}
}

// rootfsTar is a one-file filesystem tarball.
func rootfsTar(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi\n"))
	tw.Close()
	return b.Bytes()
}

// testStore makes a store under a new root with the images names, each
// imported with cfg and created a minute after the one before; it returns
// the root.
func testStore(t *testing.T, cfg ocispec.ImageConfig, names ...string) string {
	t.Helper()
	testutil.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "store")
	ctx := context.Background()
	st, err := store.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-3 * time.Hour)
	for i, n := range names {
		if _, err := st.Import(ctx, bytes.NewReader(rootfsTar(t)), store.ImportOptions{Name: n, Changes: cfg, Created: created.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}

// run runs strata with args and returns its standard output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRoot()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// inspect and history end to end: names and IDs, several images, one
// missing.
func TestInspectAndHistoryCommands(t *testing.T) {
	root := testStore(t, ocispec.ImageConfig{Env: []string{"A=1"}, Cmd: []string{"sh"}}, "busybox:1.36", "team/app:1.2")
	out, err := run(t, "--root", root, "inspect", "busybox:1.36", "team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	var doc []struct {
		Id       string
		RepoTags []string
		Config   struct{ Env, Cmd []string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(doc) != 2 || doc[0].RepoTags[0] != "busybox:1.36" || doc[1].RepoTags[0] != "team/app:1.2" || doc[0].Config.Env[0] != "A=1" || doc[1].Config.Cmd[0] != "sh" {
		t.Fatalf("inspect: %+v", doc)
	}
	id := doc[0].Id
	out, err = run(t, "--root", root, "inspect", "--format", "{{.RepoTags}} {{.Config.Env}}", strings.TrimPrefix(id, "sha256:")[:8], "missing")
	if err == nil || !strings.Contains(err.Error(), "no such image: missing") || isUsage(err) {
		t.Errorf("inspect of a missing image: %v", err)
	}
	if want := "[busybox:1.36] [A=1]\n"; out != want {
		t.Errorf("inspect --format by ID: %q, want %q", out, want)
	}
	out, err = run(t, "--root", root, "inspect", "missing")
	if err == nil || out != "[]\n" {
		t.Errorf("inspect of a missing image printed %q, %v; want [] and an error", out, err)
	}

	out, err = run(t, "--root", root, "history", "--format", "{{.ID}}|{{.CreatedSince}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "team/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	if want := doc[1].Id[7:19] + "|2 hours ago|strata import|"; !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "B|Imported from tarball\n") {
		t.Errorf("history: %q, want %q...", out, want)
	}
	out, err = run(t, "--root", root, "history", "-q", "--no-trunc", doc[1].Id)
	if err != nil || out != doc[1].Id+"\n" {
		t.Errorf("history -q --no-trunc: %q, %v", out, err)
	}
}

func TestHistoryRows(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	t1 := now.Add(-3 * time.Hour)
	long := "RUN /bin/sh -c apt-get update &&\tapt-get install -y curl ca-certificates git\nrm -rf /var/lib/apt/lists/*"
	hist := []store.HistoryEntry{
		{History: ocispec.History{Created: &t1, CreatedBy: "ADD rootfs /", Comment: "base"}, Size: 5 << 20},
		{History: ocispec.History{Created: &t1, CreatedBy: long}, Size: 1234},
		{History: ocispec.History{CreatedBy: `CMD ["sh"]`, EmptyLayer: true}},
	}
	id := digest.FromString("cfg").String()
	local := t1.Local().Format(time.RFC3339)
	for _, tc := range []struct {
		name   string
		flags  historyFlags
		format string
		want   string
	}{
		{"default", historyFlags{human: true}, "", "" +
			"IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n" +
			id[7:19] + "                 CMD [\"sh\"]                                      0B        \n" +
			"<missing>      3 hours ago   RUN /bin/sh -c apt-get update && apt-get ins…   1.2kB     \n" +
			"<missing>      3 hours ago   ADD rootfs /                                    5.0MB     base\n"},
		{"raw", historyFlags{noTrunc: true}, "{{.ID}}|{{.CreatedSince}}|{{.CreatedAt}}|{{.Size}}|{{json .CreatedBy}}", "" +
			id + "|||0|\"CMD [\\\"sh\\\"]\"\n" +
			"<missing>|" + local + "|" + local + "|1234|\"RUN /bin/sh -c apt-get update && apt-get install -y curl ca-certificates git\\nrm -rf /var/lib/apt/lists/*\"\n" +
			"<missing>|" + local + "|" + local + "|5242880|\"ADD rootfs /\"\n"},
		{"table", historyFlags{human: true}, `table {{.Size}}\t{{.Comment}}`, "" +
			"SIZE      COMMENT\n" +
			"0B        \n" +
			"1.2kB     \n" +
			"5.0MB     base\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, err := parseFormat(cmpOrDefault(tc.format, historyTable), historyTable, historyHeaders)
			if err != nil {
				t.Fatal(err)
			}
			rows := historyRows(hist, id, tc.flags, now)
			anys := make([]any, len(rows))
			for i, r := range rows {
				anys[i] = r
			}
			var b bytes.Buffer
			if err := fm.write(&b, anys); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func cmpOrDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tag and rmi take image IDs as docker's do: rmi of an ID with several
// names needs --force.
func TestTagAndRmiByID(t *testing.T) {
	root := testStore(t, ocispec.ImageConfig{}, "busybox")
	out, err := run(t, "--root", root, "inspect", "--format", "{{.Id}}", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(strings.TrimSpace(out), "sha256:")[:12]
	if _, err := run(t, "--root", root, "tag", id, "app:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "--root", root, "tag", "ffffff", "app:2"); err == nil || !strings.Contains(err.Error(), "no such image: ffffff") {
		t.Errorf("tag of a missing ID: %v", err)
	}
	if _, err := run(t, "--root", root, "rmi", id); err == nil || !strings.Contains(err.Error(), "has 2 names (app:1, busybox:latest): remove them by name, or all with --force") {
		t.Errorf("rmi of an ID with two names: %v", err)
	}
	if out, err := run(t, "--root", root, "rmi", "app:1", "sha256:"+id); err != nil || out != "Untagged: app:1\nUntagged: busybox:latest\n" {
		t.Errorf("rmi by name, then by the ID of one name: %q, %v", out, err)
	}
	if out, _ := run(t, "--root", root, "images", "-q"); out != "" {
		t.Errorf("images left: %q", out)
	}
	root = testStore(t, ocispec.ImageConfig{}, "a", "b")
	out, err = run(t, "--root", root, "images", "-q")
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(out)
	if len(ids) != 2 {
		t.Fatalf("images -q: %q", out)
	}
	if out, err := run(t, "--root", root, "rmi", "--force", ids[0], ids[1]); err != nil || out != "Untagged: a:latest\nUntagged: b:latest\n" {
		t.Errorf("rmi --force of the IDs: %q, %v", out, err)
	}
	if _, err := run(t, "--root", root, "rmi", "a"); err == nil || err.Error() != "rmi: no such image: a" {
		t.Errorf("rmi of a removed name: %v", err)
	}
}
