package progress

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Plain renders events as plain text for logs, in the shape of BuildKit's
// plain progress: each vertex gets a number in order of first appearance and
// every line about it starts with "#N":
//
//	#3 [build 2/4] RUN make
//	#3 cache miss: app/main.go changed
//	#3 0.123 cc -o app main.c
//	#3 DONE 0.4s
//
//	#4 [build 3/4] COPY . .
//	#4 CACHED
//
// A vertex's name is printed again, after a blank line, whenever output
// switches to it from another vertex. Log times are seconds since the vertex
// started; durations and times are taken from Event.Time. Emit is safe for
// concurrent use; write errors are dropped (Close returns the first).
//
// Close prints what is left of unterminated output and, after a blank
// line, the summary of the build (see summary).
type Plain struct {
	mu        sync.Mutex
	w         *errWriter
	vertices  map[digest.Digest]*plainVertex
	order     []*plainVertex
	current   *plainVertex // the vertex the last line was about
	noSummary bool
}

type plainVertex struct {
	id      int
	name    string
	start   time.Time
	status  Status // the last status other than Log
	took    time.Duration
	lastLog time.Time // of the last output
	partial [2][]byte // unterminated log output per stream (stdout, stderr)
}

// NewPlain returns a Plain renderer writing to w.
func NewPlain(w io.Writer) *Plain {
	return newPlain(w, Options{})
}

func newPlain(w io.Writer, o Options) *Plain {
	return &Plain{w: &errWriter{w: w}, vertices: map[digest.Digest]*plainVertex{}, noSummary: o.NoSummary}
}

// Emit renders one event.
func (p *Plain) Emit(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.vertex(e)
	switch e.Status {
	case Started:
		v.start, v.status = e.Time, Started
		p.switchTo(v)
		if e.Reason != "" {
			p.printf(v, "cache miss: %s", e.Reason)
		}
	case Cached:
		v.status = Cached
		p.switchTo(v)
		p.printf(v, "CACHED")
	case Log:
		p.log(v, e)
	case Done:
		p.flush(v, e.Time)
		v.status, v.took = Done, p.elapsed(v, e.Time)
		p.printf(v, "DONE %.1fs", v.took.Seconds())
	case Error:
		p.flush(v, e.Time)
		v.status, v.took = Error, p.elapsed(v, e.Time)
		p.printf(v, "ERROR: %s", e.Err)
	}
}

// Close prints the unterminated output of the vertices that never ended,
// then the summary.
func (p *Plain) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	steps := make([]stepEnd, 0, len(p.order))
	for _, v := range p.order {
		p.flush(v, v.lastLog)
		steps = append(steps, stepEnd{id: v.id, name: v.name, status: v.status, took: v.took})
	}
	if s := summary(steps); s != "" && !p.noSummary {
		p.current = nil
		fmt.Fprintf(p.w, "\n%s\n", s)
	}
	return p.w.firstErr()
}

// vertex returns the state of e's vertex, numbering it on first sight.
func (p *Plain) vertex(e Event) *plainVertex {
	v, ok := p.vertices[e.Vertex]
	if !ok {
		v = &plainVertex{id: len(p.vertices) + 1, name: e.Name, start: e.Time}
		if v.name == "" {
			v.name = string(e.Vertex)
		}
		p.vertices[e.Vertex] = v
		p.order = append(p.order, v)
	}
	return v
}

// switchTo prints v's header unless the last line was already about v.
func (p *Plain) switchTo(v *plainVertex) {
	if p.current == v {
		return
	}
	if p.current != nil {
		io.WriteString(p.w, "\n")
	}
	p.current = v
	fmt.Fprintf(p.w, "#%d %s\n", v.id, v.name)
}

func (p *Plain) printf(v *plainVertex, format string, args ...any) {
	p.switchTo(v)
	fmt.Fprintf(p.w, "#%d %s\n", v.id, fmt.Sprintf(format, args...))
}

func (p *Plain) elapsed(v *plainVertex, t time.Time) time.Duration {
	if v.start.IsZero() || t.Before(v.start) {
		return 0
	}
	return t.Sub(v.start)
}

// log prints the complete lines of e.Data, keeping an unterminated tail
// until more output or the end of the vertex.
func (p *Plain) log(v *plainVertex, e Event) {
	s := 0
	if e.Stream == 2 {
		s = 1
	}
	v.lastLog = e.Time
	buf := append(v.partial[s], e.Data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.line(v, e.Time, buf[:i])
		buf = buf[i+1:]
	}
	v.partial[s] = append([]byte(nil), buf...)
}

func (p *Plain) line(v *plainVertex, t time.Time, b []byte) {
	p.printf(v, "%.3f %s", p.elapsed(v, t).Seconds(), bytes.TrimSuffix(b, []byte("\r")))
}

// flush prints the unterminated log tails of v.
func (p *Plain) flush(v *plainVertex, t time.Time) {
	for s, b := range v.partial {
		if len(b) > 0 {
			p.line(v, t, b)
			v.partial[s] = nil
		}
	}
}
