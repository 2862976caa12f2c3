package builder_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
)

// historyOf lists the CreatedBy of the entries after the base image's.
func historyOf(img *image, base int) []string {
	var out []string
	for _, h := range img.config.History[base:] {
		out = append(out, h.CreatedBy)
	}
	return out
}

func TestRunFormsShellWorkdirAndUser(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM busybox
ENV GREETING=hi
RUN echo "$GREETING shell" > /shell
RUN ["/bin/sh", "-c", "echo exec > /exec"]
RUN ["/bin/sh", "-c", "echo \"$GREETING\" > /exec-env"]
SHELL ["/bin/sh", "-c", "echo \"$0\" > /shell0; eval \"$1\"", "named"]
RUN echo shell-changed > /shell1
SHELL ["/bin/sh", "-c"]
WORKDIR rel
WORKDIR sub
RUN pwd > /pwd
USER app
WORKDIR /home/app/work/deep
RUN id -u > uid && id -g > gid && touch /tmp/by-app
USER 1234:5678
RUN id -u > /tmp/uid2 && id -g >> /tmp/uid2
USER root
RUN exit 0
`,
	}, builder.Options{})
	for p, w := range map[string]string{
		"/shell": "hi shell\n", "/exec": "exec\n", "/exec-env": "hi\n", "/shell0": "named\n",
		"/shell1": "shell-changed\n", "/pwd": "/rel/sub\n",
		"/home/app/work/deep/uid": "1000\n", "/home/app/work/deep/gid": "1000\n", "/tmp/uid2": "1234\n5678\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	checkFiles(t, img, map[string]want{
		"/rel": {mode: 0o755}, "/rel/sub": {mode: 0o755},
		"/home/app/work": {mode: 0o755, uid: 1000, gid: 1000}, "/home/app/work/deep": {mode: 0o755, uid: 1000, gid: 1000},
		"/tmp/by-app": {mode: 0o644, uid: 1000, gid: 1000},
	})
	cfg := img.config.Config
	if cfg.WorkingDir != "/home/app/work/deep" || cfg.User != "root" {
		t.Errorf("workdir %q user %q", cfg.WorkingDir, cfg.User)
	}
	hist := strings.Join(historyOf(img, 1), "\n")
	for _, w := range []string{
		`RUN /bin/sh -c echo "$GREETING shell" > /shell # buildkit`,
		`RUN /bin/sh -c echo exec > /exec # buildkit`,
		`SHELL [/bin/sh -c echo "$0" > /shell0; eval "$1" named]`,
		`RUN /bin/sh -c echo "$0" > /shell0; eval "$1" named echo shell-changed > /shell1 # buildkit`,
		`WORKDIR /rel`, `WORKDIR /rel/sub`, `USER app`, `WORKDIR /home/app/work/deep`, `USER 1234:5678`,
	} {
		if !strings.Contains(hist+"\n", w+"\n") {
			t.Errorf("history lacks %q:\n%s", w, hist)
		}
	}
}

func TestRunFailureNamesLineAndExitCode(t *testing.T) {
	e := newEnv(t)
	err := e.buildError(map[string]string{"Dockerfile": "FROM busybox\n\nRUN echo ok && \\\n  exit 3\n"}, builder.Options{})
	msg := err.Error()
	for _, w := range []string{"Dockerfile:3-4", "RUN echo ok && \\", "exit 3", "exit code: 3"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	var be *builder.BuildError
	if !errors.As(err, &be) || be.Location.StartLine != 3 || be.Location.EndLine != 4 {
		t.Errorf("error is not a BuildError at lines 3-4: %#v", err)
	}
}
