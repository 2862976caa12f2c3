package registrytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// TokenServer makes a registry demand bearer tokens, as Docker Hub and
// distribution's token auth do, and hands them out at /token to User with
// Password, granting every scope asked for. Each request needs a token
// covering it: pull on the repository for GET and HEAD, push for the other
// methods, and pull on the source of a mount, without which the mount is
// ignored (the registry opens an upload session instead, as distribution
// does).
type TokenServer struct {
	User, Password string

	mu     sync.Mutex
	tokens map[string]map[string]bool // token -> "repo:action"
	asked  [][]string
	issued int
}

// Asked returns the scopes of every token request, in order.
func (ts *TokenServer) Asked() [][]string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([][]string(nil), ts.asked...)
}

// Wrap serves /token and checks the token of every other request.
func (ts *TokenServer) Wrap() Wrap {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				ts.issue(w, r)
				return
			}
			granted := ts.granted(r)
			if granted == nil {
				ts.challenge(w, r, "")
				return
			}
			repo, ok := repository(r.URL.Path)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			action := "push"
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				action = "pull"
			}
			if !granted[repo+":"+action] {
				ts.challenge(w, r, "repository:"+repo+":"+action)
				return
			}
			q := r.URL.Query()
			if from := q.Get("from"); from != "" && !granted[from+":pull"] {
				q.Del("mount")
				q.Del("from")
				r = r.Clone(r.Context())
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
		})
	}
}

// repository is the repository a /v2/ path names.
func repository(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", false
	}
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/"} {
		if i := strings.LastIndex(rest, sep); i > 0 {
			return rest[:i], true
		}
	}
	return "", false
}

func (ts *TokenServer) challenge(w http.ResponseWriter, r *http.Request, scope string) {
	c := fmt.Sprintf(`Bearer realm="http://%s/token",service="registrytest"`, r.Host)
	if scope != "" {
		c += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", c)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	if r.Method != http.MethodHead {
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
	}
}

// granted is the scope set of the request's token, nil without a valid one.
func (ts *TokenServer) granted(r *http.Request) map[string]bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tokens[tok]
}

func (ts *TokenServer) issue(w http.ResponseWriter, r *http.Request) {
	scopes := r.URL.Query()["scope"]
	ts.mu.Lock()
	ts.asked = append(ts.asked, scopes)
	ts.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != ts.User || p != ts.Password {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}`)
		return
	}
	grant := map[string]bool{}
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			parts := strings.Split(one, ":")
			if len(parts) != 3 || parts[0] != "repository" {
				continue
			}
			for _, a := range strings.Split(parts[2], ",") {
				grant[parts[1]+":"+a] = true
			}
		}
	}
	ts.mu.Lock()
	ts.issued++
	tok := fmt.Sprintf("token-%d", ts.issued)
	if ts.tokens == nil {
		ts.tokens = map[string]map[string]bool{}
	}
	ts.tokens[tok] = grant
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"token": tok})
}
