package builder_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/registry/registrytest"
	"github.com/strata-build/strata/store"
)

// remoteDigest is the digest a registry serves for ref.
func remoteDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatalf("head %s: %v", ref, err)
	}
	return d.Digest.String()
}

// A build pushes in every shape buildx users know, and what it pushed pulls
// back into an empty store as the same image.
func TestBuildPushesToRegistry(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := registrytest.Start(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo pushed > /p\n"})
	a, b := reg.Ref("app:1"), reg.Ref("other/app:2")
	res, _ := e.mustBuild(dir, builder.Options{Tags: []string{a, b}, Exports: []exporter.Exporter{exporter.Registry{}}})
	want := res.Manifest.Digest.String()
	for _, ref := range []string{a, b} {
		if got := remoteDigest(t, ref); got != want {
			t.Errorf("%s: registry has %s, the build made %s", ref, got, want)
		}
	}
	var pushed []string
	for _, r := range res.Reports {
		pushed = append(pushed, r.Pushed...)
	}
	if len(pushed) != 2 || !strings.HasSuffix(pushed[0], "@"+want) {
		t.Errorf("reported pushes %v", pushed)
	}
	// type=registry does not tag the store.
	if _, err := e.store.Image(context.Background(), a); err == nil {
		t.Errorf("type=registry tagged %s in the store", a)
	}

	// type=image,name=...,push=true tags and pushes.
	c := reg.Ref("third:3")
	res, _ = e.mustBuild(dir, builder.Options{Exports: []exporter.Exporter{exporter.ImageStore{Names: []string{normalize(t, c)}, Push: true}}})
	if got := remoteDigest(t, c); got != res.Manifest.Digest.String() {
		t.Errorf("%s: registry has %s, want %s", c, got, res.Manifest.Digest)
	}
	if img, err := e.store.Image(context.Background(), c); err != nil || img.Target.Digest != res.Manifest.Digest {
		t.Errorf("push=true did not tag the store: %+v, %v", img, err)
	}

	// An empty store pulls the same image.
	other, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pulled, err := other.Pull(context.Background(), a, store.PullOptions{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}})
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Image.Target.Digest.String() != want {
		t.Errorf("pulled %s, pushed %s", pulled.Image.Target.Digest, want)
	}
}

func normalize(t *testing.T, ref string) string {
	t.Helper()
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return n.Name()
}

// `strata login` against the real distribution registry with htpasswd auth
// writes docker's config file; `strata build --push` and `strata push` then
// authenticate with it; wrong credentials fail with exit 1 and say which
// host refused them; `strata logout` removes them.
func TestCLILoginPushLogout(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{Users: map[string]string{"alice": "s3cret"}})
	cfgDir := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		cmd := strataCmd(bin, root, args...)
		cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ref := d.Host + "/team/app:1"
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})

	out, err := run("", "build", "--push", "-t", ref, dir)
	if code := exitCode(err); code != 1 || !strings.Contains(out, "authentication failed for "+d.Host) {
		t.Fatalf("push without credentials: exit %d\n%s", code, out)
	}
	out, err = run("wrong\n", "login", "-u", "alice", "--password-stdin", d.Host)
	if code := exitCode(err); code != 1 || !strings.Contains(out, "authentication failed for "+d.Host) {
		t.Fatalf("login with a wrong password: exit %d\n%s", code, out)
	}
	if out, err := run("s3cret\n", "login", "-u", "alice", "--password-stdin", d.Host); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(cfgDir, "config.json")); err != nil || !strings.Contains(string(b), d.Host) {
		t.Fatalf("config.json after login: %s, %v", b, err)
	}
	out, err = run("", "build", "--push", "-t", ref, "--metadata-file", filepath.Join(cfgDir, "md.json"), dir)
	if err != nil || !strings.Contains(out, "pushed "+ref+"@sha256:") {
		t.Fatalf("build --push: %v\n%s", err, out)
	}
	if _, err := run("", "tag", "busybox", d.Host+"/team/base:1"); err != nil {
		t.Fatal(err)
	}
	out, err = run("", "push", d.Host+"/team/base:1")
	if err != nil || !strings.Contains(out, "pushed "+d.Host+"/team/base:1@sha256:") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	// The base layer went up with the build, in another repository: this
	// process learned that from the store and mounts it.
	if !strings.Contains(out, "; 1 mounted)") {
		t.Errorf("push of the base did not mount its layer from team/app:\n%s", out)
	}
	if out, err := run("", "logout", d.Host); err != nil || !strings.Contains(out, "Removing login credentials for "+d.Host) {
		t.Fatalf("logout: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json")); strings.Contains(string(b), d.Host) {
		t.Errorf("config.json still names %s after logout: %s", d.Host, b)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// What strata pushes, the real consumers take: skopeo inspects it, and a
// docker daemon (where one runs) pulls and runs it.
func TestPushedImageRunsInDocker(t *testing.T) {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{})
	ref := d.Host + "/strata/pushed:1"
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo from-strata > /p\nCMD [\"cat\", \"/p\"]\n"})
	res, _ := e.mustBuild(dir, builder.Options{Tags: []string{ref}, Exports: []exporter.Exporter{exporter.Registry{}}})
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != res.Manifest.Digest.String() {
			t.Errorf("skopeo inspect %s = %q, %v; want %s", ref, out, err, res.Manifest.Digest)
		}
	} else {
		t.Log("skopeo not installed: skipping its check")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Log("no docker daemon: skipping docker pull and run")
		return
	}
	// docker treats 127.0.0.0/8 registries as insecure (plain HTTP) by default.
	if out, err := exec.Command("docker", "pull", ref).CombinedOutput(); err != nil {
		t.Fatalf("docker pull %s: %v\n%s", ref, err, out)
	}
	defer exec.Command("docker", "rmi", "-f", ref).Run()
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", ref).CombinedOutput()
	if err != nil || string(out) != "from-strata\n" {
		t.Errorf("docker run %s = %q, %v", ref, out, err)
	}
}
