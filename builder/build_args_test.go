package builder_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/builder"
)

// envOf returns the config's Env as a map.
func envOf(img *image) map[string]string {
	m := map[string]string{}
	for _, kv := range img.config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// fileData returns the content of a file of the image, "" when absent.
func fileData(img *image, p string) string {
	if e, ok := img.flatten()[strings.TrimPrefix(p, "/")]; ok {
		return string(e.data)
	}
	return ""
}

func TestArgScopingAndBuildArgs(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `ARG BASE=busybox
ARG GLOBAL=global
ARG OVERRIDE=default
FROM ${BASE} AS base
RUN echo "[$GLOBAL][$BASE]" > /before
ARG GLOBAL
ARG OVERRIDE
ARG LOCAL=local
RUN echo "[$GLOBAL][$OVERRIDE][$LOCAL]" > /after
ENV FROMENV=env
ARG FROMENV=arg
ARG SHADOW=arg
ENV SHADOW=env-wins
RUN echo "[$FROMENV][$SHADOW]" > /env
ENV INHERITED=yes

FROM base
RUN echo "[$LOCAL][$INHERITED]" > /child
`,
	}, builder.Options{BuildArgs: map[string]string{"OVERRIDE": "cli", "UNDECLARED": "x"}})
	for p, w := range map[string]string{
		"/before": "[][]\n",
		"/after":  "[global][cli][local]\n",
		// As in BuildKit: a later ARG sets the build env over an ENV (the
		// config keeps the ENV), and a child stage inherits its base's ARGs.
		"/env":   "[arg][env-wins]\n",
		"/child": "[local][yes]\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	env := envOf(img)
	for _, k := range []string{"GLOBAL", "OVERRIDE", "LOCAL", "BASE", "UNDECLARED"} {
		if _, ok := env[k]; ok {
			t.Errorf("ARG %s persisted in the config env %v", k, img.config.Config.Env)
		}
	}
	if env["FROMENV"] != "env" || env["SHADOW"] != "env-wins" || env["INHERITED"] != "yes" || env["PATH"] == "" {
		t.Errorf("config env %v", img.config.Config.Env)
	}
	var runs []string
	for _, h := range img.config.History {
		if strings.HasPrefix(h.CreatedBy, "RUN ") {
			runs = append(runs, h.CreatedBy)
		}
	}
	wantRuns := []string{
		`RUN /bin/sh -c echo "[$GLOBAL][$BASE]" > /before # buildkit`,
		`RUN |3 GLOBAL=global OVERRIDE=cli LOCAL=local /bin/sh -c echo "[$GLOBAL][$OVERRIDE][$LOCAL]" > /after # buildkit`,
		`RUN |5 GLOBAL=global OVERRIDE=cli LOCAL=local FROMENV=arg SHADOW=env-wins /bin/sh -c echo "[$FROMENV][$SHADOW]" > /env # buildkit`,
		`RUN |5 GLOBAL=global OVERRIDE=cli LOCAL=local FROMENV=arg SHADOW=env-wins /bin/sh -c echo "[$LOCAL][$INHERITED]" > /child # buildkit`,
	}
	if strings.Join(runs, "\n") != strings.Join(wantRuns, "\n") {
		t.Errorf("RUN history:\n%s\nwant:\n%s", strings.Join(runs, "\n"), strings.Join(wantRuns, "\n"))
	}
}

func TestVariableModifiersAndOneValuePerInstruction(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM scratch
ENV A=hello
ENV B=${A:-x} C=${UNSET:-def} D=${A:+alt} E=${UNSET:+alt} F=${A#he} G=${A%lo} H=${A/l/L} I=${A//l/L}
ENV J=$A K=\$A L="${A}-q" M=${A##*l} N=${A%%l*}
ENV A=bye O=$A
ENV P=${EMPTY-unset} EMPTY= Q=x
ENV R=${EMPTY-unset} S=${EMPTY:-empty}
COPY --chmod=${MODE:-640} f /${A}/
`,
		"f": "f",
	}, builder.Options{})
	env := envOf(img)
	wantEnv := map[string]string{"B": "hello", "C": "def", "D": "alt", "E": "", "F": "llo", "G": "hel", "H": "heLlo",
		"I": "heLLo", "J": "hello", "K": "$A", "L": "hello-q", "M": "o", "N": "he", "A": "bye", "O": "hello",
		"P": "unset", "R": "", "S": "empty"}
	for k, v := range wantEnv {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	checkFiles(t, img, map[string]want{"/bye/f": {data: "f", mode: 0o640}})
}

func TestRequiredVariableFails(t *testing.T) {
	e := newEnv(t)
	err := e.buildError(map[string]string{"Dockerfile": "FROM scratch\nENV A=${NOPE:?required}\n"}, builder.Options{})
	if !strings.Contains(err.Error(), "NOPE: required") || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("error %q", err)
	}
}

func TestProxyAndPlatformArgs(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": `FROM busybox
ARG TARGETPLATFORM
ARG TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH
RUN echo "$HTTP_PROXY|$no_proxy|$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH" > /out
`,
	}, builder.Options{BuildArgs: map[string]string{"HTTP_PROXY": "http://proxy:3128", "no_proxy": "local"}})
	arch := runtime.GOARCH
	want := "http://proxy:3128|local|linux/" + arch + "|linux|" + arch + "||linux/" + arch + "|linux|" + arch + "\n"
	if got := fileData(img, "/out"); got != want {
		t.Errorf("/out = %q, want %q", got, want)
	}
	for _, h := range img.config.History {
		if strings.Contains(h.CreatedBy, "HTTP_PROXY=") || strings.Contains(h.CreatedBy, "no_proxy=") {
			t.Errorf("a proxy arg is in the history: %q", h.CreatedBy)
		}
	}
	if _, ok := envOf(img)["HTTP_PROXY"]; ok {
		t.Error("HTTP_PROXY persisted in the config env")
	}

}

func TestScratchGetsDefaultPath(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "f"}, builder.Options{})
	if got := envOf(img)["PATH"]; got != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("PATH = %q", got)
	}
}

func TestSourceDateEpochIsReproducible(t *testing.T) {
	files := map[string]string{
		"Dockerfile": "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo built > /built && mkdir -p /d && touch /d/x\nCOPY f /f\nLABEL l=v\n",
		"f":          "f",
	}
	opts := builder.Options{BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}}
	var digests []string
	for range 2 {
		e := newEnv(t)
		dir := writeContext(t, files)
		res, _ := e.mustBuild(dir, opts)
		digests = append(digests, res.Manifest.Digest.String())
		img := e.readImage(res)
		epoch := time.Unix(1700000000, 0).UTC()
		if img.config.Created == nil || !img.config.Created.Equal(epoch) {
			t.Errorf("created %v, want %v", img.config.Created, epoch)
		}
		for _, h := range img.config.History[1:] {
			if h.Created == nil || !h.Created.Equal(epoch) {
				t.Errorf("history %q created %v", h.CreatedBy, h.Created)
			}
		}
		for _, l := range img.layers[1:] {
			for _, en := range l {
				if en.hdr.ModTime.After(epoch) {
					t.Errorf("%s mtime %v after the epoch", en.hdr.Name, en.hdr.ModTime)
				}
			}
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two fresh stores gave %s and %s", digests[0], digests[1])
	}
}
