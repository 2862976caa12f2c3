package progress

import (
	"io"
	"sync"
)

// Renderer is a Sink that shows a build's events to a person or a program.
// Close ends it once no more events come: it flushes what is pending and
// writes the end of the output (a final view, the summary). Close returns
// the first error writing the output met; Emit drops write errors, so
// that a broken output never fails a build.
type Renderer interface {
	Sink
	Close() error
}

// Options tune a Renderer. The zero value is the default.
type Options struct {
	// NoSummary leaves the summary line out of what Close writes: for
	// commands of one step (pull, push), where it says nothing new.
	NoSummary bool
}

// Quiet is a Renderer that shows nothing.
type Quiet struct{}

func (Quiet) Emit(Event)   {}
func (Quiet) Close() error { return nil }

// errWriter remembers the first error of the writes to w and makes the
// later ones no-ops.
type errWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) firstErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}
