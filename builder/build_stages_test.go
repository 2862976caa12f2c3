package builder_test

import (
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
)

const stagesDockerfile = `FROM busybox AS broken
RUN exit 1

FROM no-such-image:never AS unresolvable
RUN exit 1

FROM busybox AS base
RUN echo base > /base

FROM base AS middle
RUN echo middle > /middle

FROM busybox AS other
COPY --from=middle /middle /copied

FROM other
RUN echo final > /final
`

func TestOnlyTargetStagesAreBuilt(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": stagesDockerfile})
	res, ev := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	for p, w := range map[string]string{"/copied": "middle\n", "/final": "final\n"} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	checkAbsent(t, img, "/base", "/middle")
	for name, st := range ev.statuses() {
		if strings.Contains(name, "exit 1") || st == progress.Error {
			t.Errorf("vertex %q ran (%s) though the target does not need it", name, st)
		}
	}

	res, _ = e.mustBuild(dir, builder.Options{Target: "middle"})
	img = e.readImage(res)
	if fileData(img, "/base") != "base\n" || fileData(img, "/middle") != "middle\n" {
		t.Errorf("target middle: /base %q /middle %q", fileData(img, "/base"), fileData(img, "/middle"))
	}
	checkAbsent(t, img, "/final", "/copied")

	err := e.buildError(map[string]string{"Dockerfile": stagesDockerfile}, builder.Options{Target: "broken"})
	if !strings.Contains(err.Error(), "Dockerfile:2") || !strings.Contains(err.Error(), "exit 1") {
		t.Errorf("building the broken target: %v", err)
	}
	err = e.buildError(map[string]string{"Dockerfile": stagesDockerfile}, builder.Options{Target: "nope"})
	if !strings.Contains(err.Error(), `target stage "nope" could not be found`) {
		t.Errorf("unknown target: %v", err)
	}
}

func TestFromPlatformAndStageByArg(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{"Dockerfile": `ARG FLAVOR=base
FROM --platform=$BUILDPLATFORM busybox AS base
ARG TARGETARCH
RUN echo "$TARGETARCH" > /arch

FROM ${FLAVOR} AS picked
RUN cp /arch /arch2
`}, builder.Options{})
	if a := fileData(img, "/arch2"); a == "" || a != fileData(img, "/arch") {
		t.Errorf("/arch2 %q /arch %q", a, fileData(img, "/arch"))
	}
}
