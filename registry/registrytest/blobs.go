package registrytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// repoBlobs scopes the in-process registry's blobs (stored once per digest
// for all repositories) to the repositories they were uploaded or mounted
// to, and answers cross-repository mounts.
type repoBlobs struct {
	mu    sync.Mutex
	links map[string]map[string]bool // repository -> digests
}

func newRepoBlobs() *repoBlobs { return &repoBlobs{links: map[string]map[string]bool{}} }

func (rb *repoBlobs) has(repo, d string) bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.links[repo][d]
}

func (rb *repoBlobs) link(repo, d string) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.links[repo] == nil {
		rb.links[repo] = map[string]bool{}
	}
	rb.links[repo][d] = true
}

// splitBlobPath splits "/v2/<repo>/blobs/<rest>".
func splitBlobPath(p string) (repo, rest string, ok bool) {
	if !strings.HasPrefix(p, "/v2/") {
		return "", "", false
	}
	i := strings.LastIndex(p, "/blobs/")
	if i < len("/v2/") {
		return "", "", false
	}
	return p[len("/v2/"):i], p[i+len("/blobs/"):], true
}

func (rb *repoBlobs) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, rest, ok := splitBlobPath(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && strings.TrimSuffix(rest, "/") == "uploads":
			if d, from := q.Get("mount"), q.Get("from"); d != "" && from != "" && rb.has(from, d) {
				rb.link(repo, d)
				w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d)
				w.Header().Set("Docker-Content-Digest", d)
				w.WriteHeader(http.StatusCreated)
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			if d := q.Get("digest"); d != "" && sw.status() == http.StatusCreated {
				rb.link(repo, d)
			}
		case r.Method == http.MethodPut && strings.HasPrefix(rest, "uploads/"):
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			if sw.status() == http.StatusCreated {
				rb.link(repo, q.Get("digest"))
			}
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(rest, "uploads"):
			if !rb.has(repo, rest) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				if r.Method == http.MethodGet {
					io.WriteString(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"Unknown blob"}]}`)
				}
				return
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// statusWriter remembers the status a handler wrote and lets a wrap hijack
// the connection beneath it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) status() int { return s.code }

func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("registrytest: %T cannot hijack", s.ResponseWriter)
	}
	return h.Hijack()
}
