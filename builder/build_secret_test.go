package builder_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
)

const secretValue = "s3cr3t-Value-4b1d7e"

func TestSecretFileAndEnvNeverStored(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /hash && stat -c '%a %u %g' /run/secrets/tok > /stat
RUN --mount=type=secret,id=tok,target=/etc/app/tok,mode=0440,uid=1000,gid=1001 stat -c '%a %u %g' /etc/app/tok > /stat2 && (echo x > /etc/app/tok 2>/dev/null && echo writable || echo readonly) > /ro
USER app
RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'printf %s "$TOKEN" | sha256sum | cut -d" " -f1 > /tmp/envhash'
USER root
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo skipped > /optional
`})
	res, ev := e.mustBuild(dir, builder.Options{Secrets: map[string][]byte{"tok": []byte(secretValue)}})
	img := e.readImage(res)
	sum := sha256.Sum256([]byte(secretValue))
	hash := hex.EncodeToString(sum[:]) + "\n"
	for p, w := range map[string]string{
		"/hash": hash, "/stat": "400 0 0\n", "/stat2": "440 1000 1001\n", "/ro": "readonly\n",
		"/tmp/envhash": hash, "/optional": "skipped\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	assertNoPaths(t, img, "/run", "/etc/app")
	secret := []byte(secretValue)
	for i, l := range img.layers {
		for _, en := range l {
			if bytes.Contains(en.data, secret) {
				t.Errorf("layer %d file %s holds the secret", i, en.hdr.Name)
			}
		}
	}
	if cfg, _ := json.Marshal(img.config); bytes.Contains(cfg, secret) {
		t.Error("the image config or history holds the secret")
	}
	for _, x := range ev.all {
		if b, _ := json.Marshal(x); bytes.Contains(b, secret) {
			t.Errorf("a progress event holds the secret: %s", b)
		}
	}
	// Nothing in the store (metadata, cache keys, snapshots, blobs) has it.
	err := filepath.WalkDir(e.store.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, secret) {
			t.Errorf("store file %s holds the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertNoMountsLeft(t, e.store)

	// Another value of the secret is not a reason to run the steps again:
	// only its id is in the key (a hit on the last step touches none below).
	_, ev2 := e.mustBuild(dir, builder.Options{Secrets: map[string][]byte{"tok": []byte("other")}})
	runs := 0
	for name, st := range ev2.statuses() {
		if strings.Contains(name, "] RUN --mount=type=secret") {
			runs++
			if st != progress.Cached {
				t.Errorf("%s: %s after the secret changed, want cached", name, st)
			}
		}
	}
	if runs == 0 {
		t.Error("no secret step reported in the second build")
	}
}

func TestSecretRequiredMissingFails(t *testing.T) {
	e := newEnv(t)
	err := e.buildError(map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=secret,id=nope,required true
`}, builder.Options{})
	if !strings.Contains(err.Error(), `secret "nope" is required but was not given`) || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("error %q does not say which secret is missing where", err)
	}
}

// agentClient is a static program that sends a line to $SSH_AUTH_SOCK and
// prints the answer; busybox has no unix socket client.
const agentClient = `package main

import (
	"io"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	c.Write([]byte("ping\n"))
	c.(*net.UnixConn).CloseWrite()
	io.Copy(os.Stdout, c)
}
`

// buildAgentClient compiles agentClient into dir/agentc.
func buildAgentClient(t *testing.T, dir string) {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go toolchain to build the agent client")
		}
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(agentClient), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module agentc\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, "agentc"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agent client: %v\n%s", err, out)
	}
}

// serveAgent answers every connection on a unix socket with "agent:" and
// the line it got.
func serveAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("agent:" + line))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock
}

func TestSSHForwardsTheAgent(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=bind,source=agentc,target=/agentc --mount=type=ssh sh -c 'echo $SSH_AUTH_SOCK > /sock; /agentc > /reply'
USER app
RUN --mount=type=bind,source=agentc,target=/agentc --mount=type=ssh,id=other,target=/tmp/agent,uid=1000,mode=0600 sh -c 'SSH_AUTH_SOCK=/tmp/agent /agentc > /tmp/reply-app'
USER root
RUN --mount=type=ssh,id=absent test ! -e /run/buildkit/ssh_agent.0 && echo skipped > /optional
`})
	buildAgentClient(t, dir)
	sock := serveAgent(t)
	res, _ := e.mustBuild(dir, builder.Options{SSH: map[string]string{"default": sock, "other": sock}})
	img := e.readImage(res)
	for p, w := range map[string]string{
		"/sock": "/run/buildkit/ssh_agent.0\n", "/reply": "agent:ping\n", "/tmp/reply-app": "agent:ping\n", "/optional": "skipped\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	assertNoPaths(t, img, "/run", "/tmp/agent", "/agentc")
	assertNoMountsLeft(t, e.store)

	err := e.buildError(map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=ssh,required true\n"}, builder.Options{})
	if !strings.Contains(err.Error(), `ssh agent "default" is required but was not given`) {
		t.Errorf("error %q does not say the agent is missing", err)
	}
}
