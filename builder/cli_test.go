package builder_test

import (
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// `strata build -q` prints only the image ID, as `docker build -q` does,
// and --metadata-file lists every step with its cache status and reason.
func TestCLIQuietAndMetadataFile(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
	md := filepath.Join(t.TempDir(), "md.json")
	out, err := strataCmd(bin, root, "build", "-q", "--metadata-file", md, dir).Output()
	if err != nil {
		t.Fatalf("build -q: %v", err)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).Match(out) {
		t.Errorf("build -q printed %q, want only the image ID", out)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Config string `json:"containerimage.config.digest"`
		Steps  []struct {
			Name, Status, Reason string
		} `json:"strata.steps"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Config != strings.TrimSpace(string(out)) {
		t.Errorf("metadata config %s, printed %s", meta.Config, out)
	}
	var run bool
	for _, s := range meta.Steps {
		if strings.HasSuffix(s.Name, "RUN echo hi > /hi") {
			run = true
			if s.Status != "done" || s.Reason != "no previous build of this step" {
				t.Errorf("RUN step in metadata: %+v", s)
			}
		}
	}
	if !run {
		t.Errorf("no RUN step in the metadata: %s", b)
	}
}

// SOURCE_DATE_EPOCH in the environment is the build arg, as buildx passes
// it: two builds that run every step again give the same image digest.
func TestCLISourceDateEpochFromEnvironment(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
	build := func(env ...string) string {
		t.Helper()
		cmd := strataCmd(bin, root, "build", "-q", "--no-cache", dir)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if a, b := build(), build(); a == b {
		t.Fatalf("two --no-cache builds without SOURCE_DATE_EPOCH gave one image %s: the test proves nothing", a)
	}
	if a, b := build("SOURCE_DATE_EPOCH=1700000000"), build("SOURCE_DATE_EPOCH=1700000000"); a != b {
		t.Errorf("with SOURCE_DATE_EPOCH in the environment: %s then %s, want one image", a, b)
	}
}

// `strata build --trace FILE` writes the build's timeline: one span per
// step with its cache verdict, the wait for a job slot of every step that
// ran, lanes whose spans never overlap, and the build's phases.
func TestCLITrace(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	// Three independent stages for two job slots: two run at once, the
	// third waits for a slot.
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox AS a
RUN sleep 0.3 && echo a > /a
FROM busybox AS b
RUN sleep 0.3 && echo b > /b
FROM busybox AS c
RUN sleep 0.3 && echo c > /c
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
`})
	build := func() (map[string]traceSpan, []traceSpan) {
		t.Helper()
		tmp := t.TempDir()
		trace, md := filepath.Join(tmp, "trace.json"), filepath.Join(tmp, "md.json")
		out, err := strataCmd(bin, root, "build", "--progress=plain", "--jobs", "2", "--trace", trace, "--metadata-file", md, dir).CombinedOutput()
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		var doc struct {
			TraceEvents []traceSpan `json:"traceEvents"`
		}
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("trace: %v\n%s", err, b)
		}
		var meta struct {
			Steps []struct{ Name string } `json:"strata.steps"`
		}
		if b, err = os.ReadFile(md); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			t.Fatal(err)
		}
		lanes := map[int]string{}
		steps := map[string]traceSpan{}
		var spans []traceSpan
		for _, e := range doc.TraceEvents {
			switch {
			case e.Ph == "M" && e.Name == "thread_name":
				lanes[e.Tid] = e.Args["name"].(string)
			case e.Ph == "X":
				spans = append(spans, e)
				if e.Cat != "step" {
					continue
				}
				if _, dup := steps[e.Name]; dup {
					t.Errorf("two spans of step %q", e.Name)
				}
				steps[e.Name] = e
			}
		}
		for _, s := range meta.Steps {
			if _, ok := steps[s.Name]; !ok {
				t.Errorf("no span of step %q", s.Name)
			}
		}
		if len(steps) != len(meta.Steps) {
			t.Errorf("%d step spans for %d steps", len(steps), len(meta.Steps))
		}
		for _, s := range spans {
			if _, ok := lanes[s.Tid]; !ok {
				t.Errorf("span %q on lane %d, which has no name", s.Name, s.Tid)
			}
		}
		checkTraceLanes(t, spans)
		return steps, spans
	}

	steps, spans := build()
	var runs int
	var waited float64
	for name, s := range steps {
		if !strings.Contains(name, " RUN sleep 0.3") {
			continue
		}
		runs++
		if s.Args["verdict"] != "run" || s.Args["reason"] == nil {
			t.Errorf("first build, %q: args %v, want it run with a reason", name, s.Args)
		}
		w, ok := s.Args["slot_wait_us"].(float64)
		if !ok {
			t.Errorf("%q: no slot_wait_us in %v", name, s.Args)
		}
		waited = max(waited, w)
	}
	if runs != 3 {
		t.Fatalf("%d spans of RUN steps, want 3", runs)
	}
	if waited < 100_000 {
		t.Errorf("the longest wait for a slot was %vus; with 3 steps of 0.3s for 2 slots one waits about 0.3s", waited)
	}
	var phases []string
	for _, s := range spans {
		if s.Cat == "phase" {
			phases = append(phases, s.Name)
		}
	}
	for _, want := range []string{"convert Dockerfile", "solve", "write image", "export to the image store"} {
		if !slices.Contains(phases, want) {
			t.Errorf("phases %q lack %q", phases, want)
		}
	}

	steps, _ = build()
	for name, s := range steps {
		if strings.Contains(name, " RUN ") && s.Args["verdict"] != "CACHED" {
			t.Errorf("second build, %q: args %v, want CACHED", name, s.Args)
		}
	}

	// A failed build writes its trace too, with the error of the step.
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	trace := filepath.Join(t.TempDir(), "failed.json")
	if out, err := strataCmd(bin, root, "build", "--progress=quiet", "--trace", trace, bad).CombinedOutput(); err == nil {
		t.Fatalf("a failing RUN built:\n%s", out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatalf("no trace of a failed build: %v", err)
	}
	if !strings.Contains(string(b), `"error":"process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"`) {
		t.Errorf("the trace of a failed build lacks the step's error:\n%s", b)
	}
	// A trace that cannot be written fails the command before the build.
	out, err := strataCmd(bin, root, "build", "--trace", filepath.Join(t.TempDir(), "no", "trace.json"), dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--trace") || strings.Contains(string(out), "RUN") {
		t.Errorf("--trace into a missing directory: %v\n%s", err, out)
	}
}

// traceSpan is an event of a --trace file.
type traceSpan struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`
	Dur  int64          `json:"dur"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args"`
}

// checkTraceLanes checks that the steps and their waits for a slot never
// overlap on one lane.
func checkTraceLanes(t *testing.T, spans []traceSpan) {
	t.Helper()
	byTid := map[int][]traceSpan{}
	for _, s := range spans {
		if s.Cat == "step" || s.Name == "waiting for a job slot" {
			byTid[s.Tid] = append(byTid[s.Tid], s)
		}
	}
	for tid, ss := range byTid {
		slices.SortFunc(ss, func(a, b traceSpan) int { return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(a.Dur, b.Dur)) })
		for i := 1; i < len(ss); i++ {
			if p := ss[i-1]; ss[i].Ts < p.Ts+p.Dur {
				t.Errorf("lane %d: %q [%d+%d] overlaps %q [%d+%d]", tid, p.Name, p.Ts, p.Dur, ss[i].Name, ss[i].Ts, ss[i].Dur)
			}
		}
	}
}
