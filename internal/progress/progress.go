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
	// Waited reports that a running vertex waited for Lock from Since to
	// Time. Renderers that show no timeline ignore it.
	Waited Status = "waited"
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
	// Since is when a wait ended by this event began. On a Started event
	// of the solver it is when the vertex was ready to run (its inputs
	// made, the cache missed) and began waiting for one of the solver's
	// job slots: Time is when it got one, so Time-Since is its wait for a
	// slot (0 when one was free). On a Waited event it is when the vertex
	// began waiting for Lock, which it held at Time. Zero when unknown.
	Since time.Time `json:",omitzero"`
	// Lock names what a Waited event's vertex waited for.
	Lock string `json:",omitempty"`
	// Bytes, on a Done event, is how many bytes the vertex moved: what a
	// pull fetched, what a push uploaded. 0 when it moved none or does
	// not say.
	Bytes int64 `json:",omitempty"`
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
