package progress

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// RawJSON renders events as BuildKit's clients print --progress=rawjson:
// one SolveStatus JSON object per line, for programs to read.
//
//	{"vertexes":[{"digest":"sha256:…","name":"[2/3] RUN make","started":"…"}]}
//	{"logs":[{"vertex":"sha256:…","stream":1,"data":"Y2MgLW8gYXBwCg==","timestamp":"…"}]}
//	{"vertexes":[{"digest":"sha256:…","name":"[2/3] RUN make","started":"…","completed":"…"}]}
//
// Every change of a vertex writes the vertex's whole state (BuildKit's
// Vertex), output writes a VertexLog with the data base64-encoded. The
// JSON names are those of BuildKit's client.SolveStatus; the fields strata
// has nothing for (inputs, statuses, warnings) are left out. A cached
// vertex is started and completed at once; a vertex first seen through its
// output is written before it. Emit is safe for concurrent use; write
// errors are dropped (Close returns the first).
type RawJSON struct {
	mu       sync.Mutex
	w        *errWriter
	enc      *json.Encoder
	vertices map[digest.Digest]*jsonVertex
}

// jsonVertex is BuildKit's client.Vertex, in JSON.
type jsonVertex struct {
	Digest    digest.Digest `json:"digest,omitempty"`
	Name      string        `json:"name,omitempty"`
	Started   *time.Time    `json:"started,omitempty"`
	Completed *time.Time    `json:"completed,omitempty"`
	Cached    bool          `json:"cached,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// jsonLog is BuildKit's client.VertexLog, in JSON.
type jsonLog struct {
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Stream    int           `json:"stream,omitempty"`
	Data      []byte        `json:"data"`
	Timestamp time.Time     `json:"timestamp"`
}

// jsonStatus is BuildKit's client.SolveStatus, in JSON.
type jsonStatus struct {
	Vertexes []*jsonVertex `json:"vertexes,omitempty"`
	Logs     []*jsonLog    `json:"logs,omitempty"`
}

// NewRawJSON returns a RawJSON renderer writing to w.
func NewRawJSON(w io.Writer) *RawJSON {
	ew := &errWriter{w: w}
	return &RawJSON{w: ew, enc: json.NewEncoder(ew), vertices: map[digest.Digest]*jsonVertex{}}
}

// Emit writes one SolveStatus line about e.
func (r *RawJSON) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st jsonStatus
	v, ok := r.vertices[e.Vertex]
	if !ok {
		v = &jsonVertex{Digest: e.Vertex, Name: e.Name}
		r.vertices[e.Vertex] = v
	}
	t := e.Time
	switch e.Status {
	case Started:
		*v = jsonVertex{Digest: v.Digest, Name: v.Name, Started: &t}
	case Cached:
		v.Cached, v.Completed = true, &t
		if v.Started == nil {
			v.Started = &t
		}
	case Done, Error:
		v.Completed, v.Error = &t, e.Err
		if v.Started == nil {
			v.Started = &t
		}
	case Log:
		st.Logs = []*jsonLog{{Vertex: e.Vertex, Stream: e.Stream, Data: e.Data, Timestamp: t}}
		if ok {
			r.encode(st)
			return
		}
	default:
		return
	}
	c := *v
	st.Vertexes = []*jsonVertex{&c}
	r.encode(st)
}

func (r *RawJSON) encode(st jsonStatus) {
	_ = r.enc.Encode(st) // a write error is kept by r.w
}

// Close returns the first write error; there is nothing more to write.
func (r *RawJSON) Close() error {
	return r.w.firstErr()
}
