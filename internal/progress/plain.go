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
//	#3 cache miss: file app/main.go changed
//	#3 0.123 cc -o app main.c
//	#3 DONE 0.4s
//
//	#4 [build 3/4] COPY . .
//	#4 CACHED
//
// A vertex's name is printed again, after a blank line, whenever output
// switches to it from another vertex. Log times are seconds since the vertex
// started; durations and times are taken from Event.Time. Emit is safe for
// concurrent use; write errors are dropped.
type Plain struct {
	mu       sync.Mutex
	w        io.Writer
	vertices map[digest.Digest]*plainVertex
	current  *plainVertex // the vertex the last line was about
}

type plainVertex struct {
	id      int
	name    string
	start   time.Time
	partial [2][]byte // unterminated log output per stream (stdout, stderr)
}

// NewPlain returns a Plain renderer writing to w.
func NewPlain(w io.Writer) *Plain {
	return &Plain{w: w, vertices: map[digest.Digest]*plainVertex{}}
}

// Emit renders one event.
func (p *Plain) Emit(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.vertex(e)
	switch e.Status {
	case Started:
		v.start = e.Time
		p.switchTo(v)
		if e.Reason != "" {
			p.printf(v, "cache miss: %s", e.Reason)
		}
	case Cached:
		p.switchTo(v)
		p.printf(v, "CACHED")
	case Log:
		p.log(v, e)
	case Done:
		p.flush(v, e.Time)
		p.printf(v, "DONE %.1fs", p.elapsed(v, e.Time).Seconds())
	case Error:
		p.flush(v, e.Time)
		p.printf(v, "ERROR: %s", e.Err)
	}
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
