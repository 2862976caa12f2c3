package progress

import (
	"io"
	"os"
	"sync"
	"time"
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

// Options tune a Renderer made by New. The zero value is the default.
type Options struct {
	// NoColor keeps escape sequences for colour out of a tty view.
	NoColor bool
	// NoSummary leaves the summary line out of what Close writes: for
	// commands of one step (pull, push), where it says nothing new.
	NoSummary bool

	// Interval is the time between two frames of a tty view; 0 is 100ms.
	Interval time.Duration
	// Size reports the width and height of the terminal, in cells. It is
	// called before every frame, so a resized terminal is followed. By
	// default, the size of the output if it is a terminal, else 80x24.
	Size func() (width, height int)
	// Now is the clock of a tty view's timers; nil is time.Now.
	Now func() time.Time
}

// New returns the renderer of mode m writing to w. ModeAuto is ModeTTY when
// w is a terminal; use Choose to also heed the environment.
func New(m Mode, w io.Writer, o Options) Renderer {
	switch m {
	case ModeAuto:
		if f, ok := w.(*os.File); ok && IsTerminal(f) {
			return NewTTY(w, o)
		}
		return newPlain(w, o)
	case ModeTTY:
		return NewTTY(w, o)
	case ModeRawJSON:
		return NewRawJSON(w)
	case ModeQuiet:
		return Quiet{}
	}
	return newPlain(w, o)
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
