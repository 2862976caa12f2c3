package progress

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Trace is a PhaseSink that keeps a build's events and phases and writes
// them, with WriteJSON, as a timeline in the Chrome trace-event format,
// which Perfetto (ui.perfetto.dev) and chrome://tracing open:
//
//	{"traceEvents":[
//	{"name":"process_name","ph":"M","ts":0,"pid":1,"tid":0,"args":{"name":"strata build"}},
//	{"name":"thread_name","ph":"M","ts":0,"pid":1,"tid":1,"args":{"name":"build"}},
//	{"name":"thread_name","ph":"M","ts":0,"pid":1,"tid":2,"args":{"name":"lane 1"}},
//	{"name":"solve","cat":"phase","ph":"X","ts":40000,"dur":1460000,"pid":1,"tid":1},
//	{"name":"[build 1/3] FROM docker.io/library/alpine:3.20","cat":"step","ph":"X","ts":50000,"dur":0,"pid":1,"tid":2,"args":{"verdict":"CACHED","vertex":"sha256:…"}},
//	{"name":"waiting for a job slot","cat":"wait","ph":"X","ts":60000,"dur":40000,"pid":1,"tid":2,"args":{"step":"[build 2/3] RUN make"}},
//	{"name":"[build 2/3] RUN make","cat":"step","ph":"X","ts":100000,"dur":800000,"pid":1,"tid":2,"args":{"lock_wait_us":180000,"reason":"file main.c changed","slot_wait_us":40000,"verdict":"run","vertex":"sha256:…"}},
//	{"name":"waiting for cache mount /root/.cache (id go, locked)","cat":"wait","ph":"X","ts":120000,"dur":180000,"pid":1,"tid":2,"args":{…}},
//	],"displayTimeUnit":"ms","otherData":{"origin":"2025-05-01T12:00:00Z"}}
//
// Every run of a vertex is a complete ("X") event of category "step" whose
// args give its verdict ("CACHED" or "run"), the reason the cache missed,
// the bytes it moved, its error, and the microseconds it waited: for a job
// slot of the solver (slot_wait_us, from Event.Since of its Started event)
// and for locks (lock_wait_us, the sum of its Waited events). A wait for a
// slot is also a "waiting for a job slot" span just before the step, and
// a wait for a lock a "waiting for ..." span inside it; both of category
// "wait", drawn when they lasted a millisecond or more. A cached vertex is a span of no duration when the cache answered;
// a vertex that failed before it started has no verdict. A step that
// never ended lasts until the last event of the trace (and says
// "unfinished"). Output (Log events) is left out.
//
// Steps are laid out on lanes (threads named "lane N" by "M" events, after
// the lanes of the phases): each takes, from the start of its wait to its end, the
// lowest lane free at the start of its wait, so spans of one lane never
// overlap and the number of lanes is the most steps that were under way
// at once. Phases have lanes of their own ("build") in the same way.
// Times (ts, dur) are whole microseconds since the earliest time of the
// trace, which otherData.origin gives.
//
// Emit and Phase are safe for concurrent use and cheap: a Trace only keeps
// what it is told until WriteJSON.
type Trace struct {
	mu     sync.Mutex
	runs   map[digest.Digest][]*traceRun
	order  []*traceRun
	phases []Phase
	last   time.Time // the latest time of any event
}

// traceRun is one run of one vertex: from a Started event to its end, or a
// Cached event.
type traceRun struct {
	vertex     digest.Digest
	name       string
	seq        int       // order of first sight, to sort equal times
	queued     time.Time // when the wait for a slot began; start if none
	start, end time.Time // end is zero while the run is open
	status     Status    // Started (open), Cached, Done or Error
	started    bool      // a Started event began it: it ran
	slotWait   bool      // the Started event said since when it waited
	reason     string
	err        string
	bytes      int64
	locks      []traceLock
}

// traceLock is a wait of a run for a lock.
type traceLock struct {
	lock       string
	start, end time.Time
}

// NewTrace returns an empty Trace.
func NewTrace() *Trace {
	return &Trace{runs: map[digest.Digest][]*traceRun{}}
}

// Emit records e.
func (t *Trace) Emit(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Time.After(t.last) {
		t.last = e.Time
	}
	switch e.Status {
	case Started:
		r := t.newRun(e)
		r.start, r.queued, r.reason, r.started = e.Time, e.Time, e.Reason, true
		if !e.Since.IsZero() && !e.Since.After(e.Time) {
			r.queued, r.slotWait = e.Since, true
		}
	case Cached:
		r := t.open(e)
		if r == nil {
			r = t.newRun(e)
			r.start, r.queued = e.Time, e.Time
		}
		r.status, r.end = Cached, e.Time
	case Done, Error:
		r := t.open(e)
		if r == nil {
			r = t.newRun(e)
			r.start, r.queued = e.Time, e.Time
		}
		r.status, r.end, r.err = e.Status, e.Time, e.Err
		r.bytes += e.Bytes
	case Waited:
		if r := t.latest(e.Vertex); r != nil {
			r.locks = append(r.locks, traceLock{lock: e.Lock, start: cmp.Or(e.Since, e.Time), end: e.Time})
		}
	}
}

// Phase records p.
func (t *Trace) Phase(p Phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.End.After(t.last) {
		t.last = p.End
	}
	t.phases = append(t.phases, p)
}

func (t *Trace) newRun(e Event) *traceRun {
	name := e.Name
	if name == "" {
		name = string(e.Vertex)
	}
	r := &traceRun{vertex: e.Vertex, name: name, seq: len(t.order), status: Started}
	t.runs[e.Vertex] = append(t.runs[e.Vertex], r)
	t.order = append(t.order, r)
	return r
}

// open is the run of e's vertex that has not ended, nil if none.
func (t *Trace) open(e Event) *traceRun {
	if r := t.latest(e.Vertex); r != nil && r.status == Started {
		return r
	}
	return nil
}

func (t *Trace) latest(v digest.Digest) *traceRun {
	rs := t.runs[v]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

// traceEvent is one event of the trace-event format.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`
	Dur  *int64         `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

const tracePid = 1

// minWaitSpan is the shortest wait drawn as a span of its own; the args of
// the step give every wait, however short.
const minWaitSpan = time.Millisecond

// WriteJSON writes the trace: one event per line, metadata first, then
// phases and steps by start time.
func (t *Trace) WriteJSON(w io.Writer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	origin := t.origin()
	us := func(at time.Time) int64 { return at.Sub(origin).Microseconds() }
	span := func(name, cat string, tid int, from, to time.Time, args map[string]any) traceEvent {
		ts := us(from)
		dur := max(us(to)-ts, 0)
		return traceEvent{Name: name, Cat: cat, Ph: "X", Ts: ts, Dur: &dur, Pid: tracePid, Tid: tid, Args: args}
	}
	meta := func(tid int, name, value string) traceEvent {
		return traceEvent{Name: name, Ph: "M", Pid: tracePid, Tid: tid, Args: map[string]any{"name": value}}
	}

	phases := slices.Clone(t.phases)
	slices.SortStableFunc(phases, func(a, b Phase) int { return a.Start.Compare(b.Start) })
	phaseLane, nPhaseLanes := lanes(len(phases), func(i int) (time.Time, time.Time) { return phases[i].Start, phases[i].End })
	runs := slices.Clone(t.order)
	slices.SortStableFunc(runs, func(a, b *traceRun) int {
		return cmp.Or(a.queued.Compare(b.queued), a.start.Compare(b.start), cmp.Compare(a.seq, b.seq))
	})
	end := func(r *traceRun) time.Time {
		if r.status == Started {
			return t.last // never ended
		}
		return r.end
	}
	runLane, nRunLanes := lanes(len(runs), func(i int) (time.Time, time.Time) { return runs[i].queued, end(runs[i]) })

	events := []traceEvent{meta(0, "process_name", "strata build")}
	for i := range nPhaseLanes {
		name := "build"
		if i > 0 {
			name += " " + strconv.Itoa(i+1)
		}
		events = append(events, meta(1+i, "thread_name", name))
	}
	firstRunTid := 1 + nPhaseLanes
	for i := range nRunLanes {
		events = append(events, meta(firstRunTid+i, "thread_name", "lane "+strconv.Itoa(i+1)))
	}
	for i, p := range phases {
		args := map[string]any{}
		if p.Bytes != 0 {
			args["bytes"] = p.Bytes
		}
		if p.Err != "" {
			args["error"] = p.Err
		}
		if len(args) == 0 {
			args = nil
		}
		events = append(events, span(p.Name, "phase", 1+phaseLane[i], p.Start, p.End, args))
	}
	for i, r := range runs {
		tid, rend := firstRunTid+runLane[i], end(r)
		args := map[string]any{"vertex": string(r.vertex)}
		switch {
		case r.status == Cached:
			args["verdict"] = "CACHED"
		case r.started:
			args["verdict"] = "run"
		}
		if r.status == Started {
			args["unfinished"] = true
		}
		if r.reason != "" {
			args["reason"] = r.reason
		}
		if r.err != "" {
			args["error"] = r.err
		}
		if r.bytes != 0 {
			args["bytes"] = r.bytes
		}
		if r.slotWait {
			wait := us(r.start) - us(r.queued)
			args["slot_wait_us"] = wait
			if r.start.Sub(r.queued) >= minWaitSpan {
				events = append(events, span("waiting for a job slot", "wait", tid, r.queued, r.start, map[string]any{"step": r.name}))
			}
		}
		var locks []traceEvent
		if len(r.locks) > 0 {
			var total int64
			for _, l := range r.locks {
				from, to := us(clamp(l.start, r.start, rend)), us(clamp(l.end, r.start, rend))
				total += to - from
				if l.end.Sub(l.start) >= minWaitSpan {
					locks = append(locks, span("waiting for "+l.lock, "wait", tid, clamp(l.start, r.start, rend), clamp(l.end, r.start, rend), map[string]any{"step": r.name, "lock": l.lock}))
				}
			}
			args["lock_wait_us"] = total
		}
		events = append(events, span(r.name, "step", tid, r.start, rend, args))
		events = append(events, locks...)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // step names keep their && and >
	buf.WriteString(`{"traceEvents":[`)
	for i, e := range events {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
		if err := enc.Encode(e); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteString("\n],\"displayTimeUnit\":\"ms\",\"otherData\":")
	if err := enc.Encode(map[string]string{"origin": origin.UTC().Format(time.RFC3339Nano)}); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	buf.WriteString("}\n")
	_, err := w.Write(buf.Bytes())
	return err
}

// origin is the earliest time of the trace: that of ts 0.
func (t *Trace) origin() time.Time {
	var o time.Time
	early := func(at time.Time) {
		if !at.IsZero() && (o.IsZero() || at.Before(o)) {
			o = at
		}
	}
	for _, r := range t.order {
		early(r.queued)
		early(r.start)
	}
	for _, p := range t.phases {
		early(p.Start)
	}
	return o
}

// lanes gives each of n intervals, sorted by start, the lowest lane free
// at its start: one whose intervals all ended by then. It returns the
// lanes and how many there are.
func lanes(n int, interval func(i int) (from, to time.Time)) ([]int, int) {
	out := make([]int, n)
	var free []time.Time // per lane, when its last interval ends
	for i := range n {
		from, to := interval(i)
		if to.Before(from) {
			to = from
		}
		lane := slices.IndexFunc(free, func(end time.Time) bool { return !end.After(from) })
		if lane < 0 {
			lane = len(free)
			free = append(free, time.Time{})
		}
		free[lane] = to
		out[i] = lane
	}
	return out, len(free)
}

func clamp(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}
