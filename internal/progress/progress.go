// Package progress carries what a build reports while it runs: one Event per
// change of a vertex's state, plus the lines its command prints.
//
// A producer (the solver, an op) calls Sink.Emit; a Renderer turns events
// into text: TTY a live view for a terminal, Plain lines for a CI log,
// RawJSON BuildKit's SolveStatus for programs. Choose picks one from the
// command line and the environment. Sinks are passed explicitly, never
// through a context.
package progress

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Status is the state a vertex entered.
type Status string

const (
	Started Status = "started"
	Cached  Status = "cached"
	Done    Status = "done"
	Error   Status = "error"
	Log     Status = "log"
)

// Event is one report about one vertex.
type Event struct {
	Vertex digest.Digest
	Name   string
	Status Status
	Time   time.Time
	// Data is output of the vertex (Log events); Stream is 1 or 2.
	Data   []byte `json:",omitempty"`
	Stream int    `json:",omitempty"`
	// Reason explains why a Started vertex missed the cache.
	Reason string `json:",omitempty"`
	// Err is the failure of an Error event.
	Err string `json:",omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Discard is a Sink that drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) {}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Emit(e Event) { f(e) }
