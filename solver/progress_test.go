package solver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

func TestPlainRenderer(t *testing.T) {
	var buf bytes.Buffer
	p := progress.NewPlain(&buf)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run, cp, img := digest.FromString("run"), digest.FromString("copy"), digest.FromString("image")
	for _, e := range []progress.Event{
		{Vertex: img, Name: "[build 1/4] FROM busybox", Status: progress.Cached, Time: at(0)},
		{Vertex: run, Name: "[build 2/4] RUN make", Status: progress.Started, Time: at(0), Reason: "app/main.go changed"},
		{Vertex: run, Status: progress.Log, Time: at(123), Data: []byte("cc -o app main.c\nlinking")},
		{Vertex: cp, Name: "[build 3/4] COPY . .", Status: progress.Started, Time: at(200)},
		{Vertex: run, Status: progress.Log, Time: at(300), Data: []byte(" done\r\n"), Stream: 1},
		{Vertex: run, Status: progress.Log, Time: at(350), Data: []byte("warning: unused"), Stream: 2},
		{Vertex: run, Status: progress.Done, Time: at(400)},
		{Vertex: cp, Status: progress.Error, Time: at(500), Err: "copy app: no such file"},
	} {
		p.Emit(e)
	}
	want := `#1 [build 1/4] FROM busybox
#1 CACHED

#2 [build 2/4] RUN make
#2 cache miss: app/main.go changed
#2 0.123 cc -o app main.c

#3 [build 3/4] COPY . .

#2 [build 2/4] RUN make
#2 0.300 linking done
#2 0.400 warning: unused
#2 DONE 0.4s

#3 [build 3/4] COPY . .
#3 ERROR: copy app: no such file
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("plain output (-want +got):\n%s", diff)
	}
}

// lockedBuffer is a bytes.Buffer safe for the race detector when Plain is
// shared; Plain itself serializes writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestPlainRendersASolve(t *testing.T) {
	h := newHarness(t)
	h.mustSolve(graph(h, "make"))
	var out lockedBuffer
	s := h.solver(Options{Progress: progress.NewPlain(&out), Jobs: 8})
	if _, err := s.Solve(t.Context(), graph(h, "make all")); err != nil {
		t.Fatal(err)
	}
	text := out.b.String()
	// Every block line is "#N ..." and each vertex got one number.
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		num, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(num, "#") {
			t.Fatalf("line %q is not a numbered progress line", line)
		}
		switch rest { // a header: the vertex name
		case "base", "a", "b", "c", "root":
			if prev, seen := ids[rest]; seen && prev != num {
				t.Errorf("vertex %s numbered %s and %s", rest, prev, num)
			}
			ids[rest] = num
		}
	}
	if len(ids) != 5 {
		t.Fatalf("found headers of %v, want all 5 vertices:\n%s", ids, text)
	}
	for _, want := range []string{
		ids["base"] + " cache miss: command changed from make to \"make all\"",
		ids["a"] + " cache miss: parent step missed",
		ids["c"] + " CACHED",
		ids["root"] + " DONE ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestPlainConcurrentEmit(t *testing.T) {
	var out lockedBuffer
	p := progress.NewPlain(&out)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			d := digest.FromString(fmt.Sprint(i))
			p.Emit(progress.Event{Vertex: d, Name: fmt.Sprint("v", i), Status: progress.Started})
			for j := range 50 {
				p.Emit(progress.Event{Vertex: d, Status: progress.Log, Data: fmt.Appendf(nil, "line %d\n", j)})
			}
			p.Emit(progress.Event{Vertex: d, Status: progress.Done})
		})
	}
	wg.Wait()
	text := out.b.String()
	if n := strings.Count(text, " DONE 0.0s\n"); n != 8 {
		t.Errorf("%d DONE lines, want 8", n)
	}
	if n := strings.Count(text, " line 49\n"); n != 8 {
		t.Errorf("%d last log lines, want 8", n)
	}
}

// A vertex ready while every job slot is busy reports, in its Started
// event, since when it waited for one.
func TestStartedReportsSlotWait(t *testing.T) {
	h := newHarness(t)
	const run = 200 * time.Millisecond
	leaf := func(name string) *llb.Vertex {
		return h.vertex(name, spec{key: name, exec: func(context.Context, []Result) (Result, error) {
			time.Sleep(run)
			return &fakeResult{id: name}, nil
		}})
	}
	root := h.vertex("root", spec{key: "root"}, leaf("x"), leaf("y"))
	if _, err := h.solver(Options{Jobs: 1}).Solve(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	started, done := map[string]progress.Event{}, map[string]progress.Event{}
	for _, e := range h.events {
		switch e.Status {
		case progress.Started:
			if e.Since.IsZero() || e.Since.After(e.Time) {
				t.Errorf("%s started at %v, waiting since %v", e.Name, e.Time, e.Since)
			}
			started[e.Name] = e
		case progress.Done:
			done[e.Name] = e
		}
	}
	first, second := started["x"], started["y"]
	if second.Time.Before(first.Time) {
		first, second = second, first
	}
	// Both leaves were ready together; the second waited for the first's
	// slot, that is for most of the first's run.
	if !second.Since.Before(done[first.Name].Time) {
		t.Errorf("%s began waiting at %v, after %s ended at %v", second.Name, second.Since, first.Name, done[first.Name].Time)
	}
	if wait := second.Time.Sub(second.Since); wait < run/2 {
		t.Errorf("%s waited %v for a slot, want about %v", second.Name, wait, run)
	}
	if wait := first.Time.Sub(first.Since); wait >= run/2 {
		t.Errorf("%s waited %v for a free slot", first.Name, wait)
	}
}
