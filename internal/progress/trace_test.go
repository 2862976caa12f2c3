package progress

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// traceScript is a build with fixed times: a pull while the Dockerfile is
// converted, cached steps, two steps that waited for a slot (one also for
// a lock), a failed step, one that never ended, an export and a push.
func traceScript() ([]Event, []Phase) {
	ev := func(name string, ms int, s Status) Event {
		return Event{Vertex: digest.FromString(name), Name: name, Status: s, Time: at(ms)}
	}
	started := func(name string, ms, since int, reason string) Event {
		e := ev(name, ms, Started)
		e.Since, e.Reason = at(since), reason
		return e
	}
	pull, push := "pull docker.io/library/alpine:3.20", "pushing registry.example/app:1"
	ctx, base := "[internal] load build context", "[build 1/3] FROM docker.io/library/alpine:3.20"
	mk, check := "[build 2/3] RUN make && make check", "[tools 2/2] RUN ./check.sh"
	cp, slow := "[build 3/3] COPY --from=tools /out /", "[tools 3/3] RUN ./slow.sh"

	pulled := ev(pull, 35, Done)
	pulled.Bytes = 3_456_789
	lock := ev(mk, 300, Waited)
	lock.Since, lock.Lock = at(120), "cache mount /root/.cache (id go, locked)"
	failed := ev(check, 1200, Error)
	failed.Err = "exit code: 1"
	logged := ev(slow, 1400, Log)
	logged.Data = []byte("working\n")
	pushed := ev(push, 1690, Done)
	pushed.Bytes = 999

	events := []Event{
		ev(pull, 5, Started),
		pulled,
		ev(ctx, 50, Cached),
		ev(base, 50, Cached),
		started(check, 70, 60, "file check.sh changed"),
		started(mk, 100, 60, "file main.c changed"),
		lock,
		ev(mk, 900, Done),
		started(slow, 950, 950, "parent step missed"),
		failed,
		started(cp, 1250, 1210, "file /out changed"),
		ev(cp, 1300, Done),
		logged,
		ev(push, 1610, Started),
		pushed,
	}
	phases := []Phase{
		{Name: "convert Dockerfile", Start: at(0), End: at(40)},
		{Name: "solve", Start: at(40), End: at(1500), Err: "[tools 2/2] RUN ./check.sh: exit code: 1"},
		{Name: "export to oci archive out.tar", Start: at(1600), End: at(1700), Bytes: 12345},
	}
	return events, phases
}

func TestTraceGolden(t *testing.T) {
	tr := NewTrace()
	events, phases := traceScript()
	for _, e := range events {
		tr.Emit(e)
	}
	for _, p := range phases {
		tr.Phase(p)
	}
	var out bytes.Buffer
	if err := tr.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "trace.golden", out.Bytes())

	spans := parseTrace(t, out.Bytes())
	byName := map[string]traceEvent{}
	for _, s := range spans {
		if s.Cat == "step" {
			byName[s.Name] = s
		}
	}
	if len(byName) != 8 {
		t.Errorf("%d step spans, want one per vertex (8)", len(byName))
	}
	for name, want := range map[string]map[string]any{
		"[build 2/3] RUN make && make check":             {"verdict": "run", "slot_wait_us": 40000.0, "lock_wait_us": 180000.0, "reason": "file main.c changed"},
		"[build 1/3] FROM docker.io/library/alpine:3.20": {"verdict": "CACHED"},
		"[tools 2/2] RUN ./check.sh":                     {"verdict": "run", "slot_wait_us": 10000.0, "error": "exit code: 1"},
		"[tools 3/3] RUN ./slow.sh":                      {"verdict": "run", "slot_wait_us": 0.0, "unfinished": true},
		"pull docker.io/library/alpine:3.20":             {"verdict": "run", "bytes": 3456789.0},
		"[build 3/3] COPY --from=tools /out /":           {"verdict": "run", "slot_wait_us": 40000.0},
	} {
		for k, v := range want {
			if got := byName[name].Args[k]; got != v {
				t.Errorf("%s: args[%s] = %v, want %v", name, k, got, v)
			}
		}
	}
	if s := byName["[tools 3/3] RUN ./slow.sh"]; s.Ts+*s.Dur != 1700_000 {
		t.Errorf("the unfinished step ends at %dus, want the trace's end", s.Ts+*s.Dur)
	}
	checkLanes(t, spans)
}

// parseTrace reads a written trace back: its X events, checking that the
// whole is the object chrome://tracing reads and that every lane used is
// named.
func parseTrace(t *testing.T, b []byte) []traceEvent {
	t.Helper()
	var doc struct {
		TraceEvents []traceEvent `json:"traceEvents"`
		Unit        string       `json:"displayTimeUnit"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("trace is not JSON: %v\n%s", err, b)
	}
	named := map[int]bool{}
	var spans []traceEvent
	for _, e := range doc.TraceEvents {
		switch e.Ph {
		case "M":
			if e.Name == "thread_name" {
				named[e.Tid] = true
			}
		case "X":
			if e.Dur == nil || *e.Dur < 0 || e.Ts < 0 {
				t.Errorf("span %+v: bad ts or dur", e)
			}
			spans = append(spans, e)
		default:
			t.Errorf("event of phase %q", e.Ph)
		}
	}
	for _, s := range spans {
		if !named[s.Tid] {
			t.Errorf("lane %d of %q has no thread_name", s.Tid, s.Name)
		}
	}
	return spans
}

// checkLanes checks that the steps (with their waits for a slot) of one
// lane never overlap, and that a wait for a lock lies inside its step.
func checkLanes(t *testing.T, spans []traceEvent) {
	t.Helper()
	byTid := map[int][]traceEvent{}
	for _, s := range spans {
		if s.Cat == "step" || s.Name == "waiting for a job slot" {
			byTid[s.Tid] = append(byTid[s.Tid], s)
		}
	}
	for tid, ss := range byTid {
		slices.SortFunc(ss, func(a, b traceEvent) int { return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(*a.Dur, *b.Dur)) })
		for i := 1; i < len(ss); i++ {
			if prev := ss[i-1]; ss[i].Ts < prev.Ts+*prev.Dur {
				t.Errorf("lane %d: %q [%d+%d] overlaps %q [%d+%d]", tid, prev.Name, prev.Ts, *prev.Dur, ss[i].Name, ss[i].Ts, *ss[i].Dur)
			}
		}
	}
	for _, w := range spans {
		if w.Cat != "wait" || w.Name == "waiting for a job slot" {
			continue
		}
		inside := slices.ContainsFunc(byTid[w.Tid], func(s traceEvent) bool {
			return s.Cat == "step" && s.Name == w.Args["step"] && s.Ts <= w.Ts && w.Ts+*w.Dur <= s.Ts+*s.Dur
		})
		if !inside {
			t.Errorf("%q is not inside its step on lane %d", w.Name, w.Tid)
		}
	}
}

// However steps overlap, the lanes hold them apart, and there are only as
// many lanes as steps under way at once.
func TestTraceLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		tr := NewTrace()
		type iv struct{ from, to int }
		var ivs []iv
		for i := range 30 {
			name := fmt.Sprintf("step %d", i)
			since := rng.IntN(1000)
			start := since + rng.IntN(50)
			end := start + 1 + rng.IntN(300)
			ivs = append(ivs, iv{since, end})
			e := Event{Vertex: digest.FromString(name), Name: name, Status: Started, Time: at(start), Since: at(since)}
			tr.Emit(e)
			e.Status, e.Time, e.Since = Done, at(end), time.Time{}
			tr.Emit(e)
		}
		var out bytes.Buffer
		if err := tr.WriteJSON(&out); err != nil {
			t.Fatal(err)
		}
		spans := parseTrace(t, out.Bytes())
		checkLanes(t, spans)
		lanes := map[int]bool{}
		for _, s := range spans {
			lanes[s.Tid] = true
		}
		most := 0
		for _, a := range ivs {
			n := 0
			for _, b := range ivs {
				if b.from <= a.from && a.from < b.to {
					n++
				}
			}
			most = max(most, n)
		}
		if len(lanes) != most {
			t.Errorf("round %d: %d lanes for at most %d steps at once", round, len(lanes), most)
		}
	}
}

func TestTeeGivesPhasesToPhaseSinks(t *testing.T) {
	var events []Event
	tr := NewTrace()
	s := Tee(SinkFunc(func(e Event) { events = append(events, e) }), tr)
	s.Emit(Event{Vertex: "v", Name: "v", Status: Cached, Time: at(5)})
	s.Phase(Phase{Name: "solve", Start: at(0), End: at(10)})
	if len(events) != 1 {
		t.Errorf("the first sink got %d events, want 1", len(events))
	}
	var out bytes.Buffer
	if err := tr.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range parseTrace(t, out.Bytes()) {
		names = append(names, s.Cat+" "+s.Name)
	}
	if !slices.Equal(names, []string{"phase solve", "step v"}) {
		t.Errorf("trace spans %q, want the phase and the step", names)
	}
}
