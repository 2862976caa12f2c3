package registrytest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Request is one request a Recorder saw.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// Status is the answer's status; 0 when the connection was dropped.
	Status int
	// BodyBytes counts the request body bytes the registry read.
	BodyBytes int64
}

// IsBlobData reports whether the request carried blob bytes: a PATCH or
// PUT to an upload session, or a POST with a digest (monolithic upload).
func (r Request) IsBlobData() bool {
	_, rest, ok := splitBlobPath(r.Path)
	if !ok || !strings.HasPrefix(rest, "uploads") {
		return false
	}
	return r.Method == http.MethodPatch || r.Method == http.MethodPut || (r.Method == http.MethodPost && r.Query.Get("digest") != "")
}

// IsMount reports whether the request asked to mount a blob.
func (r Request) IsMount() bool {
	return r.Method == http.MethodPost && r.Query.Get("mount") != "" && r.Query.Get("from") != ""
}

// Recorder records the requests that reach a registry through its Wrap.
type Recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Wrap records every request, after the handlers it wraps answered.
func (rec *Recorder) Wrap() Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := &countingBody{ReadCloser: r.Body}
			r.Body = body
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				rec.mu.Lock()
				rec.reqs = append(rec.reqs, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Status: sw.status(), BodyBytes: body.n.Load()})
				rec.mu.Unlock()
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// Requests returns the requests recorded so far, in the order they ended.
func (rec *Recorder) Requests() []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Request(nil), rec.reqs...)
}

// Reset forgets the requests recorded.
func (rec *Recorder) Reset() {
	rec.mu.Lock()
	rec.reqs = nil
	rec.mu.Unlock()
}

// Count returns how many recorded requests satisfy match.
func (rec *Recorder) Count(match func(Request) bool) int {
	n := 0
	for _, r := range rec.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// BlobBytes sums the body bytes of the requests that carried blob data.
func (rec *Recorder) BlobBytes() int64 {
	var n int64
	for _, r := range rec.Requests() {
		if r.IsBlobData() {
			n += r.BodyBytes
		}
	}
	return n
}

type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// isUpload reports whether r sends blob data to an upload session, of blob
// d when d is not empty. PATCH requests carry no digest and match any d.
func isUpload(r *http.Request, d string) bool {
	_, rest, ok := splitBlobPath(r.URL.Path)
	if !ok || !strings.HasPrefix(rest, "uploads/") || (r.Method != http.MethodPatch && r.Method != http.MethodPut) {
		return false
	}
	return d == "" || r.Method == http.MethodPatch || r.URL.Query().Get("digest") == d
}

// FailUploads answers status, after reading the body, to the first times
// requests sending data of blob d to an upload session (PATCH, PUT), or to
// all of them when times is negative. An empty d matches every blob.
func FailUploads(d string, status, times int) Wrap {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isUpload(r, d) || (times >= 0 && seen.Add(1) > int64(times)) {
				next.ServeHTTP(w, r)
				return
			}
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"registrytest: injected failure"}]}`)
		})
	}
}

// DropUploads closes the connection of the first times requests sending
// data of blob d (any blob when d is empty) to an upload session after
// reading after bytes of the body, as a proxy or a crashing registry would.
func DropUploads(d string, times int, after int64) Wrap {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isUpload(r, d) || seen.Add(1) > int64(times) {
				next.ServeHTTP(w, r)
				return
			}
			io.CopyN(io.Discard, r.Body, after)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			conn.Close()
		})
	}
}
