package progress

import "time"

// Phase is a part of a build that is no vertex of its graph: converting
// the Dockerfile, importing caches, solving, writing the image, an export,
// a cache export. It is reported once it ended.
type Phase struct {
	Name       string
	Start, End time.Time
	// Bytes is how many bytes the phase wrote; 0 when it does not say.
	Bytes int64
	// Err is the phase's failure, if it failed.
	Err string
}

// PhaseSink is a Sink that also receives a build's phases. It is an
// optional interface: renderers do not implement it, as their views show
// the steps only; a Trace does.
type PhaseSink interface {
	Sink
	Phase(Phase)
}

// ReportPhase gives p to s if s is a PhaseSink, and does nothing otherwise.
func ReportPhase(s Sink, p Phase) {
	if ps, ok := s.(PhaseSink); ok {
		ps.Phase(p)
	}
}

// Tee returns a Sink that gives every event to each of sinks in turn, and
// every phase to those of them that are PhaseSinks.
func Tee(sinks ...Sink) PhaseSink {
	return tee(sinks)
}

type tee []Sink

func (t tee) Emit(e Event) {
	for _, s := range t {
		s.Emit(e)
	}
}

func (t tee) Phase(p Phase) {
	for _, s := range t {
		ReportPhase(s, p)
	}
}
