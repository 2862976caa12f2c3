package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// loopbackOnly carries requests to loopback addresses and refuses every
// other before it is sent (no dial, no DNS query), recording the hosts of
// all requests in order: nothing a test does leaves 127.0.0.1.
type loopbackOnly struct {
	inner http.RoundTripper
	mu    sync.Mutex
	hosts []string
}

func newLoopbackOnly() *loopbackOnly {
	return &loopbackOnly{inner: &http.Transport{}} // no proxy
}

func (l *loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.hosts = append(l.hosts, req.URL.Host)
	l.mu.Unlock()
	if ip := net.ParseIP(req.URL.Hostname()); ip == nil || !ip.IsLoopback() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("test transport: %s is not a loopback address, nothing is sent", req.URL.Host)
	}
	return l.inner.RoundTrip(req)
}

// reset forgets the hosts recorded.
func (l *loopbackOnly) reset() {
	l.mu.Lock()
	l.hosts = nil
	l.mu.Unlock()
}

// seen returns the hosts requested, each once, in the order first seen.
func (l *loopbackOnly) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, h := range l.hosts {
		if len(out) == 0 || out[len(out)-1] != h {
			out = append(out, h)
		}
	}
	return out
}

// loadConfig writes a registry configuration file and loads it.
func loadConfig(t *testing.T, text string) *hosts.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "strata.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := hosts.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPullDockerHubFromMirror pulls a Docker Hub name through a mirror on
// 127.0.0.1; Docker Hub itself is never reached (the transport refuses it).
func TestPullDockerHubFromMirror(t *testing.T) {
	ctx := context.Background()
	mirror := registrytest.Start(t)
	img := randomImage(t, 2)
	d := mirror.Push(t, "library/busybox:latest", img)
	cfg := loadConfig(t, fmt.Sprintf("[registry.\"docker.io\"]\n  mirrors = [%q]\n", mirror.Host))
	tr := newLoopbackOnly()
	resolver := testHosts(hosts.Options{Config: cfg, Transport: tr, Keychain: hosts.Keychain(t.TempDir())})
	eps, err := resolver.PullEndpoints("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || eps[0].Host != mirror.Host || !eps[0].Mirror || eps[1].Host != "index.docker.io" || eps[1].Mirror {
		t.Fatalf("pull endpoints of docker.io: %+v", eps)
	}

	s := newStore(t)
	evs := &events{}
	const name = "docker.io/library/busybox:latest"
	res, err := s.puller(registry.Options{Hosts: resolver, Progress: evs}).Pull(ctx, name, linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Name != name || res.Image.Target.Digest.String() != d.String() || res.Registry != mirror.Host || !res.Mirror || res.Fetched != 3 {
		t.Fatalf("pull = %+v, want %s tagged %s, from mirror %s", res, d, name, mirror.Host)
	}
	if tagged, err := s.is.Get(ctx, name); err != nil || tagged.Target.Digest.String() != d.String() {
		t.Fatalf("tag %s = %+v, %v", name, tagged, err)
	}
	if _, err := s.is.Get(ctx, mirror.Ref("library/busybox:latest")); err == nil {
		t.Error("the image is tagged under the mirror's name too")
	}
	s.checkBlobs(t, img)
	if got := tr.seen(); len(got) != 1 || got[0] != mirror.Host {
		t.Errorf("requests went to %q, want the mirror alone", got)
	}
	if list := evs.list(); list[0].Name != "pull busybox:latest" {
		t.Errorf("vertex %q", list[0].Name)
	}

	// The mirror down: the pull falls through to Docker Hub, which the
	// transport refuses; the error names the mirror, then docker.io.
	mirror.Close()
	tr.reset()
	s = newStore(t)
	_, err = s.puller(registry.Options{Hosts: resolver, Progress: evs}).Pull(ctx, name, linuxAMD64)
	if err == nil {
		t.Fatal("pull with the mirror down and Docker Hub refused succeeded")
	}
	msg := err.Error()
	m := strings.Index(msg, "mirror "+mirror.Host+": ")
	h := strings.Index(msg, "; docker.io: ")
	if !strings.HasPrefix(msg, "pull busybox:latest from registry docker.io: ") || m < 0 || h < m ||
		!strings.Contains(msg[m:h], "connection refused") || !strings.Contains(msg[h:], "index.docker.io is not a loopback address") {
		t.Fatalf("pull with the mirror down = %v, want the mirror's error then docker.io's", err)
	}
	t.Logf("mirror down: %v", err)
	if got := tr.seen(); len(got) != 2 || got[0] != mirror.Host || got[1] != "index.docker.io" {
		t.Errorf("requests went to %q, want the mirror then index.docker.io (refused)", got)
	}
	if !strings.Contains(evs.logText(), "mirror "+mirror.Host+": ") || !strings.Contains(evs.logText(), "; trying docker.io\n") {
		t.Errorf("progress does not report the fall-through:\n%s", evs.logText())
	}
	s.checkFailedPull(t, name)
}

// TestPullMirrorFallsThrough: a mirror that is down, lacks the image or
// refuses the credentials passes the pull to the next endpoint; the last
// endpoint's refusal is the ErrAuth of the pull.
func TestPullMirrorFallsThrough(t *testing.T) {
	ctx := context.Background()
	img := randomImage(t, 1)
	origin := registrytest.Start(t)
	d := origin.Push(t, "app:1", img)
	down := registrytest.Start(t)
	down.Close()
	empty := registrytest.Start(t)
	locked := registrytest.Start(t, registrytest.BasicAuth("alice", "s3cret"))
	locked.Push(t, "app:1", img)
	cfg := loadConfig(t, fmt.Sprintf("[registry.%q]\n  mirrors = [%q, %q, %q]\n", origin.Host, down.Host, empty.Host, locked.Host))
	tr := newLoopbackOnly()
	resolver := testHosts(hosts.Options{Config: cfg, Transport: tr, Keychain: hosts.Keychain(t.TempDir())})

	s := newStore(t)
	res, err := s.puller(registry.Options{Hosts: resolver}).Pull(ctx, origin.Ref("app:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Name != origin.Ref("app:1") || res.Image.Target.Digest.String() != d.String() || res.Registry != origin.Host || res.Mirror {
		t.Fatalf("pull = %+v, want %s from %s itself", res, d, origin.Host)
	}
	if got := tr.seen(); fmt.Sprint(got) != fmt.Sprint([]string{down.Host, empty.Host, locked.Host, origin.Host}) {
		t.Errorf("requests went to %q, want the mirrors in order, then the host", got)
	}

	// The host itself refuses the credentials: ErrAuth, naming it.
	cfg = loadConfig(t, fmt.Sprintf("[registry.%q]\n  mirrors = [%q]\n", locked.Host, down.Host))
	resolver = testHosts(hosts.Options{Config: cfg, Transport: tr, Keychain: hosts.Keychain(t.TempDir())})
	_, err = s.puller(registry.Options{Hosts: resolver}).Pull(ctx, locked.Ref("app:1"), linuxAMD64)
	if !errors.Is(err, registry.ErrAuth) || !errors.Is(err, hosts.ErrAuth) || !strings.Contains(err.Error(), "; "+locked.Host+": authentication failed for "+locked.Host+": ") {
		t.Fatalf("pull refused by the host after a mirror down = %v, want ErrAuth naming %s", err, locked.Host)
	}
	t.Logf("refused by the host: %v", err)

	// A mirror refusing the credentials is not the pull's ErrAuth when the
	// host answers otherwise.
	cfg = loadConfig(t, fmt.Sprintf("[registry.%q]\n  mirrors = [%q]\n", down.Host, locked.Host))
	resolver = testHosts(hosts.Options{Config: cfg, Transport: tr, Keychain: hosts.Keychain(t.TempDir())})
	_, err = s.puller(registry.Options{Hosts: resolver}).Pull(ctx, down.Ref("app:1"), linuxAMD64)
	if err == nil || errors.Is(err, registry.ErrAuth) || !strings.Contains(err.Error(), "mirror "+locked.Host+": authentication failed for "+locked.Host) {
		t.Fatalf("pull refused by a mirror, host down = %v, want the mirror's refusal in the text only", err)
	}
}

// TestPushNeverUsesMirrors: a push goes to the host, whatever mirrors it
// has.
func TestPushNeverUsesMirrors(t *testing.T) {
	ctx := context.Background()
	origin := registrytest.Start(t)
	mirror := registrytest.Start(t)
	cfg := loadConfig(t, fmt.Sprintf("[registry.%q]\n  mirrors = [%q]\n", origin.Host, mirror.Host))
	tr := newLoopbackOnly()
	s := newStore(t)
	desc := registrytest.StoreImage(t, s.cs, randomImage(t, 1))
	_, err := s.pusher(registry.Options{Hosts: testHosts(hosts.Options{Config: cfg, Transport: tr, Keychain: hosts.Keychain(t.TempDir())})}).Push(ctx, desc, []string{origin.Ref("app:1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.seen(); len(got) != 1 || got[0] != origin.Host {
		t.Errorf("push requests went to %q, want %s alone", got, origin.Host)
	}
	checkRemote(t, s.cs, origin.Ref("app:1"), desc.Digest)
}

// TestDefaultHostsReadConfigFile: without Options.Hosts, pulls and pushes
// read the default registry configuration ($STRATA_CONFIG here), and fail
// with its error when it cannot be read.
func TestDefaultHostsReadConfigFile(t *testing.T) {
	ctx := context.Background()
	t.Setenv(hosts.InsecureEnv, "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	origin := registrytest.Start(t)
	mirror := registrytest.Start(t)
	img := randomImage(t, 1)
	d := mirror.Push(t, "app:1", img) // only the mirror has it
	path := filepath.Join(t.TempDir(), "strata.toml")
	if err := os.WriteFile(path, fmt.Appendf(nil, "[registry.%q]\n  mirrors = [%q]\n", origin.Host, mirror.Host), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(hosts.ConfigEnv, path)
	s := newStore(t)
	res, err := registry.New(s.cs, s.is, registry.Options{}).Pull(ctx, origin.Ref("app:1"), linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Target.Digest.String() != d.String() || res.Registry != mirror.Host {
		t.Fatalf("pull = %+v, want %s from the configured mirror", res, d)
	}

	if err := os.WriteFile(path, []byte("[registry.\"x\"]\n  unknown = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = registry.New(s.cs, s.is, registry.Options{}).Pull(ctx, origin.Ref("app:1"), linuxAMD64)
	if err == nil || !strings.Contains(err.Error(), path+":2: unknown key registry.x.unknown") {
		t.Fatalf("pull with a broken config = %v, want the config's error", err)
	}
	_, err = registry.NewPusher(s.cs, registry.Options{}).Push(ctx, res.Image.Target, []string{origin.Ref("app:2")})
	if err == nil || !strings.Contains(err.Error(), path+":2: unknown key") {
		t.Fatalf("push with a broken config = %v, want the config's error", err)
	}
	t.Logf("broken config: %v", err)
}
