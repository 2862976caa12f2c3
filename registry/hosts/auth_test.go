package hosts_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// resolve returns what a keychain finds for a reference's registry.
func resolve(t *testing.T, kc authn.Keychain, ref string) *authn.AuthConfig {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kc.Resolve(r.Context())
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

func TestKeychainReadsDockerConfigAtEachCall(t *testing.T) {
	one := writeDockerConfig(t, map[string]any{"auths": map[string]any{
		"reg.invalid:5000":            map[string]string{"auth": basicAuth("alice", "one")},
		"https://index.docker.io/v1/": map[string]string{"auth": basicAuth("hubuser", "hubpass")},
	}})
	two := writeDockerConfig(t, map[string]any{"auths": map[string]any{
		"reg.invalid:5000": map[string]string{"auth": basicAuth("bob", "two")},
	}})
	kc := hosts.Keychain("")
	t.Setenv("DOCKER_CONFIG", one)
	if got := resolve(t, kc, "reg.invalid:5000/app"); got.Username != "alice" || got.Password != "one" {
		t.Errorf("with %s: %+v", one, got)
	}
	for _, ref := range []string{"busybox", "docker.io/library/busybox", "index.docker.io/me/app"} {
		if got := resolve(t, kc, ref); got.Username != "hubuser" || got.Password != "hubpass" {
			t.Errorf("%s: %+v", ref, got)
		}
	}
	if got := resolve(t, kc, "other.invalid/app"); *got != (authn.AuthConfig{}) {
		t.Errorf("host without credentials: %+v", got)
	}
	t.Setenv("DOCKER_CONFIG", two)
	if got := resolve(t, kc, "reg.invalid:5000/app"); got.Username != "bob" {
		t.Errorf("after changing DOCKER_CONFIG: %+v", got)
	}
	// An explicit directory wins over DOCKER_CONFIG.
	if got := resolve(t, hosts.Keychain(one), "reg.invalid:5000/app"); got.Username != "alice" {
		t.Errorf("explicit directory: %+v", got)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	if got := resolve(t, kc, "reg.invalid:5000/app"); *got != (authn.AuthConfig{}) {
		t.Errorf("no config.json: %+v", got)
	}
}

func TestKeychainCredentialHelpers(t *testing.T) {
	store := fakeHelper(t)
	if err := os.WriteFile(store, []byte(`{"reg.invalid":{"Username":"helped","Secret":"pw"},"https://index.docker.io/v1/":{"Username":"<token>","Secret":"idtoken"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// credHelpers for one host, credsStore for the others.
	dir := writeDockerConfig(t, map[string]any{
		"credHelpers": map[string]string{"reg.invalid": "test"},
		"auths":       map[string]any{"file.invalid": map[string]string{"auth": basicAuth("filed", "pw")}},
	})
	kc := hosts.Keychain(dir)
	if got := resolve(t, kc, "reg.invalid/app"); got.Username != "helped" || got.Password != "pw" {
		t.Errorf("credHelpers: %+v", got)
	}
	if got := resolve(t, kc, "file.invalid/app"); got.Username != "filed" {
		t.Errorf("auths beside credHelpers: %+v", got)
	}
	dir = writeDockerConfig(t, map[string]any{"credsStore": "test"})
	kc = hosts.Keychain(dir)
	if got := resolve(t, kc, "busybox"); got.IdentityToken != "idtoken" {
		t.Errorf("credsStore identity token for Docker Hub: %+v", got)
	}
	if got := resolve(t, kc, "none.invalid/app"); *got != (authn.AuthConfig{}) {
		t.Errorf("credsStore without the host: %+v", got)
	}
	// A helper that is not installed is an error, as for docker.
	dir = writeDockerConfig(t, map[string]any{"credsStore": "missing"})
	r, _ := name.ParseReference("reg.invalid/app")
	if _, err := hosts.Keychain(dir).Resolve(r.Context()); err == nil {
		t.Error("missing credential helper: no error")
	}
}

func TestCheckAuth(t *testing.T) {
	srv := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	ref, _ := name.ParseReference(srv.Ref("app:1"))
	ep, _ := hosts.NewResolver(noInsecure()).PushEndpoint(srv.Host)
	_, err := remote.Head(ref, ep.RemoteOptions()...)
	err = hosts.CheckAuth(srv.Host, err)
	if !errors.Is(err, hosts.ErrAuth) {
		t.Fatalf("anonymous Head: %v is not ErrAuth", err)
	}
	if !strings.HasPrefix(err.Error(), "authentication failed for "+srv.Host+": ") || !strings.Contains(err.Error(), "401") {
		t.Errorf("message: %v", err)
	}
	// Other errors pass unchanged; ErrAuth is not wrapped twice.
	other := errors.New("boom")
	if hosts.CheckAuth(srv.Host, other) != other || hosts.CheckAuth("x", nil) != nil || hosts.CheckAuth("x", err) != err {
		t.Error("CheckAuth changed an error it should pass")
	}
	if msg := hosts.CheckAuth("index.docker.io", err).Error(); !strings.HasPrefix(msg, "authentication failed for "+srv.Host) {
		t.Errorf("rewrapped: %s", msg)
	}
}

func TestLoginLogout(t *testing.T) {
	srv := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	img, _ := random.Image(64, 1)
	srv.Push(t, "app:1", img)
	dir := filepath.Join(t.TempDir(), "docker")
	r := hosts.NewResolver(noInsecure())
	ctx := context.Background()

	err := hosts.Login(ctx, r, srv.Host, "alice", "wrong", dir)
	if !errors.Is(err, hosts.ErrAuth) || !strings.Contains(err.Error(), "authentication failed for "+srv.Host) {
		t.Fatalf("login with a bad password: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); !os.IsNotExist(err) {
		t.Errorf("bad login wrote config.json: %v", err)
	}

	if err := hosts.Login(ctx, r, srv.Host, "alice", "s3cret", dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("config dir holds %d files: temporary files left?", len(entries))
	}
	auths := readDockerConfig(t, dir)["auths"].(map[string]any)
	if got := auths[srv.Host].(map[string]any)["auth"]; got != basicAuth("alice", "s3cret") {
		t.Errorf("stored auth %v", got)
	}
	// The stored credentials authenticate.
	ref, _ := name.ParseReference(srv.Ref("app:1"))
	r = hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{}, Keychain: hosts.Keychain(dir)})
	ep, _ := r.PushEndpoint(srv.Host)
	if _, err := remote.Head(ref, ep.RemoteOptions()...); err != nil {
		t.Fatalf("Head after login: %v", err)
	}

	removed, err := hosts.Logout(srv.Host, dir)
	if err != nil || !removed {
		t.Fatalf("logout: %v, %v", removed, err)
	}
	if _, ok := readDockerConfig(t, dir)["auths"].(map[string]any)[srv.Host]; ok {
		t.Error("logout left the credentials")
	}
	removed, err = hosts.Logout(srv.Host, dir)
	if err != nil || removed {
		t.Errorf("second logout: %v, %v", removed, err)
	}
	if _, err := remote.Head(ref, ep.RemoteOptions()...); !errors.Is(hosts.CheckAuth(srv.Host, err), hosts.ErrAuth) {
		t.Errorf("Head after logout: %v", err)
	}
}

func TestLoginKeepsConfig(t *testing.T) {
	srv := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	dir := writeDockerConfig(t, map[string]any{
		"auths":       map[string]any{"other.invalid": map[string]string{"auth": basicAuth("o", "p")}},
		"psFormat":    "table {{.ID}}",
		"credHelpers": map[string]string{"helped.invalid": "test"},
	})
	if err := hosts.Login(context.Background(), hosts.NewResolver(noInsecure()), "http://"+srv.Host+"/", "alice", "s3cret", dir); err != nil {
		t.Fatal(err)
	}
	cfg := readDockerConfig(t, dir)
	auths := cfg["auths"].(map[string]any)
	if _, ok := auths["other.invalid"]; !ok {
		t.Error("login dropped another host's credentials")
	}
	if _, ok := auths[srv.Host]; !ok {
		t.Errorf("login stored under %v", auths)
	}
	if cfg["psFormat"] != "table {{.ID}}" || cfg["credHelpers"] == nil {
		t.Errorf("login dropped settings: %v", cfg)
	}

	// A config.json that does not parse is reported and left alone.
	bad := []byte(`{"auths": `)
	os.WriteFile(filepath.Join(dir, "config.json"), bad, 0o600)
	if err := hosts.Login(context.Background(), hosts.NewResolver(noInsecure()), srv.Host, "alice", "s3cret", dir); err == nil {
		t.Error("login over a broken config.json succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(b) != string(bad) {
		t.Errorf("broken config.json rewritten: %s", b)
	}
}

func TestLoginCredentialHelper(t *testing.T) {
	store := fakeHelper(t)
	srv := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	img, _ := random.Image(64, 1)
	srv.Push(t, "app:1", img)
	dir := writeDockerConfig(t, map[string]any{"credHelpers": map[string]string{srv.Host: "test"}})
	r := hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{}, Keychain: hosts.Keychain(dir)})

	if err := hosts.Login(context.Background(), r, srv.Host, "alice", "s3cret", dir); err != nil {
		t.Fatal(err)
	}
	if got := helperStore(t, store)[srv.Host]; got != (storedCredential{"alice", "s3cret"}) {
		t.Errorf("helper holds %+v", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if strings.Contains(string(b), basicAuth("alice", "s3cret")) {
		t.Errorf("password written to config.json: %s", b)
	}
	ref, _ := name.ParseReference(srv.Ref("app:1"))
	ep, _ := r.PushEndpoint(srv.Host)
	if _, err := remote.Head(ref, ep.RemoteOptions()...); err != nil {
		t.Fatalf("Head with the helper's credentials: %v", err)
	}
	removed, err := hosts.Logout(srv.Host, dir)
	if err != nil || !removed {
		t.Fatalf("logout: %v, %v", removed, err)
	}
	if got := helperStore(t, store); len(got) != 0 {
		t.Errorf("helper still holds %v", got)
	}
	if removed, err := hosts.Logout(srv.Host, dir); err != nil || removed {
		t.Errorf("second logout: %v, %v", removed, err)
	}
}

func TestLoginDockerHubKey(t *testing.T) {
	// Logout needs no network: the key Login writes is the one Logout
	// removes and the keychain reads.
	dir := writeDockerConfig(t, map[string]any{"auths": map[string]any{
		hosts.DockerHubAuthKey: map[string]string{"auth": basicAuth("hubuser", "pw")},
	}})
	if got := resolve(t, hosts.Keychain(dir), "busybox"); got.Username != "hubuser" {
		t.Fatalf("keychain: %+v", got)
	}
	removed, err := hosts.Logout("docker.io", dir)
	if err != nil || !removed {
		t.Fatalf("logout docker.io: %v, %v", removed, err)
	}
	if got := resolve(t, hosts.Keychain(dir), "busybox"); *got != (authn.AuthConfig{}) {
		t.Errorf("after logout: %+v", got)
	}
}

// tokenServer is a registry behind Bearer token auth whose token endpoint,
// on the same host, records the scopes asked for.
type tokenServer struct {
	Host string
	mu   sync.Mutex
	// scopes holds each token request's scope parameters.
	scopes [][]string
	// mounts holds the "from" of each cross-repository mount.
	mounts []string
	// blobs holds "REPO@DIGEST" of the blobs pushed or mounted.
	blobs map[string]bool
}

func startTokenServer(t *testing.T, user, password string) *tokenServer {
	ts := &tokenServer{blobs: map[string]bool{}}
	srv := registrytest.Start(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				u, p, ok := r.BasicAuth()
				if ok && (u != user || p != password) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`)
					return
				}
				ts.mu.Lock()
				ts.scopes = append(ts.scopes, r.URL.Query()["scope"])
				ts.mu.Unlock()
				fmt.Fprint(w, `{"token":"t0k3n"}`)
				return
			}
			if r.Header.Get("Authorization") != "Bearer t0k3n" {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="registrytest"`, r.Host))
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, http.StatusUnauthorized)
				return
			}
			// Blobs belong to the repositories they were pushed or
			// mounted to, as in a real registry (the in-process one
			// shares them across repositories).
			repo, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/")
			q := r.URL.Query()
			ts.mu.Lock()
			switch {
			case r.Method == http.MethodHead && !strings.HasPrefix(rest, "uploads") && !ts.blobs[repo+"@"+rest]:
				ts.mu.Unlock()
				http.NotFound(w, r)
				return
			case r.Method == http.MethodPost && q.Get("mount") != "":
				ts.mounts = append(ts.mounts, q.Get("from"))
				ts.blobs[repo+"@"+q.Get("mount")] = true
			case r.Method == http.MethodPut && q.Get("digest") != "":
				ts.blobs[repo+"@"+q.Get("digest")] = true
			}
			ts.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	ts.Host = srv.Host
	return ts
}

func (ts *tokenServer) takeScopes() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var all []string
	for _, s := range ts.scopes {
		all = append(all, strings.Join(s, " "))
	}
	ts.scopes = nil
	return all
}

// TestBearerScopes: through a Resolver's endpoint, go-containerregistry
// asks pull scope to pull, push and pull to push, and the source
// repository's pull scope to mount a blob across repositories.
func TestBearerScopes(t *testing.T) {
	ts := startTokenServer(t, "alice", "s3cret")
	dir := writeDockerConfig(t, map[string]any{"auths": map[string]any{ts.Host: map[string]string{"auth": basicAuth("alice", "s3cret")}}})
	r := hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{}, Keychain: hosts.Keychain(dir)})
	ep, err := r.PushEndpoint(ts.Host)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := name.ParseReference(ts.Host + "/base:1")
	img, _ := random.Image(256, 2)
	if err := remote.Write(base, img, ep.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}
	if got := ts.takeScopes(); len(got) == 0 || got[0] != "repository:base:push,pull" {
		t.Errorf("push scopes %q", got)
	}
	pulled, err := remote.Image(base, ep.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.takeScopes(); len(got) != 1 || got[0] != "repository:base:pull" {
		t.Errorf("pull scopes %q", got)
	}
	app, _ := name.ParseReference(ts.Host + "/app:1")
	if err := remote.Write(app, pulled, ep.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}
	// The push token first, then one adding the source's pull scope
	// before the mount.
	got := ts.takeScopes()
	if len(got) < 2 || got[0] != "repository:app:push,pull" || got[len(got)-1] != "repository:app:push,pull repository:base:pull" {
		t.Errorf("mount scopes %q", got)
	}
	if len(ts.mounts) == 0 || ts.mounts[0] != "base" {
		t.Errorf("mounts from %q", ts.mounts)
	}

	// Login asks a token with the credentials; the token server denying
	// them is an authentication failure.
	if err := hosts.Login(context.Background(), r, ts.Host, "alice", "s3cret", t.TempDir()); err != nil {
		t.Errorf("login: %v", err)
	}
	err = hosts.Login(context.Background(), r, ts.Host, "alice", "wrong", t.TempDir())
	if !errors.Is(err, hosts.ErrAuth) || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Errorf("login with a bad password: %v", err)
	}
}
