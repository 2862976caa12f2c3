package builder_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
)

// dockerConfig reads a result's config blob with the Docker extensions.
func (e *env) dockerConfig(res *builder.Result) dockerspec.DockerOCIImage {
	e.t.Helper()
	b, err := e.store.Parts().Content.ReadBlob(context.Background(), res.Config)
	if err != nil {
		e.t.Fatal(err)
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(b, &img); err != nil {
		e.t.Fatal(err)
	}
	return img
}

const parentDockerfile = `FROM busybox AS base
LABEL a=1 "b c"="d e"
LABEL multi=x \
      other=y
MAINTAINER someone@example.com
EXPOSE 80 443/udp 8000-8001/tcp
VOLUME /data /cache
VOLUME ["/logs"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --start-interval=3s --retries=4 CMD ["/bin/true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo "triggered $CHILD" > /onbuild
ONBUILD COPY f /f-onbuild
ENTRYPOINT ["/bin/echo"]
CMD ["x"]
`

func TestMetadataInstructions(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": parentDockerfile})
	res, _ := e.mustBuild(dir, builder.Options{Labels: map[string]string{"cli": "label"}})
	img := e.dockerConfig(res)
	cfg := img.Config
	wantLabels := map[string]string{"a": "1", "b c": "d e", "multi": "x", "other": "y", "cli": "label"}
	if len(cfg.Labels) != len(wantLabels) {
		t.Errorf("labels %v", cfg.Labels)
	}
	for k, v := range wantLabels {
		if cfg.Labels[k] != v {
			t.Errorf("label %q = %q, want %q", k, cfg.Labels[k], v)
		}
	}
	if img.Author != "someone@example.com" {
		t.Errorf("author %q", img.Author)
	}
	var ports []string
	for p := range cfg.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if got := strings.Join(ports, " "); got != "443/udp 80/tcp 8000/tcp 8001/tcp" {
		t.Errorf("exposed ports %q", got)
	}
	if _, ok := cfg.Volumes["/data"]; !ok || len(cfg.Volumes) != 3 {
		t.Errorf("volumes %v", cfg.Volumes)
	}
	if cfg.StopSignal != "SIGQUIT" {
		t.Errorf("stop signal %q", cfg.StopSignal)
	}
	hc := cfg.Healthcheck
	if hc == nil || strings.Join(hc.Test, " ") != "CMD /bin/true" || hc.Interval != 5*time.Second || hc.Timeout != 2*time.Second ||
		hc.StartPeriod != time.Second || hc.StartInterval != 3*time.Second || hc.Retries != 4 {
		t.Errorf("healthcheck %+v", hc)
	}
	if strings.Join(cfg.Shell, " ") != "/bin/sh -ec" {
		t.Errorf("shell %q", cfg.Shell)
	}
	if got := strings.Join(cfg.OnBuild, "|"); got != `RUN echo "triggered $CHILD" > /onbuild|COPY f /f-onbuild` {
		t.Errorf("onbuild %q", got)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/bin/echo" || strings.Join(cfg.Cmd, " ") != "x" {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	var hist []string
	for _, h := range img.History[1:] {
		if !h.EmptyLayer {
			t.Errorf("%q is not an empty layer", h.CreatedBy)
		}
		hist = append(hist, h.CreatedBy)
	}
	for _, w := range []string{
		"LABEL a=1 b c=d e", "MAINTAINER someone@example.com", "EXPOSE [443/udp 80/tcp 8000/tcp 8001/tcp]",
		"VOLUME [/data /cache]", "VOLUME [/logs]", "STOPSIGNAL SIGQUIT",
		"HEALTHCHECK {Test:[CMD /bin/true] Interval:5s Timeout:2s StartPeriod:1s StartInterval:3s Retries:4}",
		"SHELL [/bin/sh -ec]",
		`ENTRYPOINT ["/bin/echo"]`, `CMD ["x"]`,
	} {
		if !slices.Contains(hist, w) {
			t.Errorf("history lacks %q:\n%s", w, strings.Join(hist, "\n"))
		}
	}
}

func TestOnbuildTriggersInChildBuild(t *testing.T) {
	e := newEnv(t)
	store := []exporter.Exporter{exporter.ImageStore{}}
	e.mustBuild(writeContext(t, map[string]string{"Dockerfile": parentDockerfile}), builder.Options{Tags: []string{"parent:1"}, Exports: store})
	res, _ := e.mustBuild(writeContext(t, map[string]string{
		"Dockerfile": "ARG CHILD=kid\nFROM parent:1\nARG CHILD\nRUN test -f /f-onbuild\nENTRYPOINT [\"/bin/cat\"]\n",
		"f":          "from the child context",
	}), builder.Options{})
	img := e.readImage(res)
	if got := fileData(img, "/f-onbuild"); got != "from the child context" {
		t.Errorf("/f-onbuild = %q", got)
	}
	if got := fileData(img, "/onbuild"); got != "triggered \n" {
		t.Errorf("/onbuild = %q (ONBUILD runs before the child's own ARG)", got)
	}
	cfg := e.dockerConfig(res).Config
	if len(cfg.OnBuild) != 0 {
		t.Errorf("triggers were passed on: %q", cfg.OnBuild)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/bin/cat" || cfg.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q: ENTRYPOINT resets an inherited CMD", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.Healthcheck == nil || cfg.StopSignal != "SIGQUIT" || cfg.Labels["a"] != "1" {
		t.Errorf("inherited config lost: %+v", cfg)
	}
}

func TestHealthcheckNoneAndShellForms(t *testing.T) {
	e := newEnv(t)
	res, _ := e.mustBuild(writeContext(t, map[string]string{"Dockerfile": `FROM busybox
HEALTHCHECK CMD wget -q localhost
HEALTHCHECK NONE
ENTRYPOINT echo entry
CMD echo cmd
`}), builder.Options{})
	cfg := e.dockerConfig(res).Config
	if cfg.Healthcheck == nil || strings.Join(cfg.Healthcheck.Test, " ") != "NONE" {
		t.Errorf("healthcheck %+v", cfg.Healthcheck)
	}
	if got := strings.Join(cfg.Entrypoint, "|"); got != "/bin/sh|-c|echo entry" {
		t.Errorf("entrypoint %q", got)
	}
	if got := strings.Join(cfg.Cmd, "|"); got != "/bin/sh|-c|echo cmd" {
		t.Errorf("cmd %q", got)
	}
}
