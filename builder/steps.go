package builder

import (
	"sync"
	"time"

	"github.com/strata-build/strata/internal/progress"
)

// Step is what happened to one named vertex of a build: whether it ran or
// came from the cache, and if it ran, why the cache missed.
type Step struct {
	Name     string        `json:"name"`
	Status   string        `json:"status"` // "cached", "done" or "error"
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// stepRecorder forwards events to next and keeps one Step per vertex.
type stepRecorder struct {
	next  progress.Sink
	mu    sync.Mutex
	order []string
	steps map[string]*Step
	start map[string]time.Time
}

func newStepRecorder(next progress.Sink) *stepRecorder {
	return &stepRecorder{next: next, steps: map[string]*Step{}, start: map[string]time.Time{}}
}

func (r *stepRecorder) Emit(e progress.Event) {
	r.next.Emit(e)
	if e.Status == progress.Log || e.Name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := e.Vertex.String()
	st, ok := r.steps[key]
	if !ok {
		st = &Step{Name: e.Name}
		r.steps[key] = st
		r.order = append(r.order, key)
	}
	switch e.Status {
	case progress.Started:
		st.Reason = e.Reason
		r.start[key] = e.Time
	case progress.Cached, progress.Done, progress.Error:
		st.Status = string(e.Status)
		st.Error = e.Err
		if t, ok := r.start[key]; ok && !e.Time.IsZero() {
			st.Duration = e.Time.Sub(t)
		}
	}
}

// Phase passes p on to next, if it takes phases.
func (r *stepRecorder) Phase(p progress.Phase) {
	progress.ReportPhase(r.next, p)
}

// list returns the steps in the order they first appeared.
func (r *stepRecorder) list() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Step, 0, len(r.order))
	for _, k := range r.order {
		out = append(out, *r.steps[k])
	}
	return out
}
