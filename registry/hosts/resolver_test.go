package hosts_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

func boolPtr(b bool) *bool { return &b }

// noInsecure is a Resolver's options that ignore STRATA_INSECURE_REGISTRIES,
// read no certs.d and no docker config.
func noInsecure() hosts.Options {
	return hosts.Options{Insecure: []string{}, CertsDirs: []string{}, Keychain: hosts.Keychain("/nonexistent")}
}

func TestSchemeDecision(t *testing.T) {
	cfg := &hosts.Config{Registries: map[string]hosts.Registry{
		"plain.invalid":  {PlainHTTP: boolPtr(true)},
		"skip.invalid":   {Insecure: boolPtr(true)},
		"127.0.0.1:5000": {PlainHTTP: boolPtr(false)},
	}}
	base := noInsecure()
	base.Config = cfg
	r := hosts.NewResolver(base)
	ri := r.WithInsecure("registry.invalid", "other.invalid:5000")
	tests := []struct {
		r                *hosts.Resolver
		host             string
		wantHost         string
		plain, skipCheck bool
	}{
		{r, "registry.invalid", "registry.invalid", false, false},
		{r, "registry.invalid:5000", "registry.invalid:5000", false, false},
		{r, "10.1.2.3:5000", "10.1.2.3:5000", false, false},
		{r, "localhost.example.com", "localhost.example.com", false, false},
		{r, "docker.io", "index.docker.io", false, false},
		{r, "registry-1.docker.io", "index.docker.io", false, false},
		{r, "localhost", "localhost", true, false},
		{r, "localhost:5000", "localhost:5000", true, false},
		{r, "127.0.0.2:5000", "127.0.0.2:5000", true, false},
		{r, "127.3.2.1", "127.3.2.1", true, false},
		{r, "[::1]:5000", "[::1]:5000", true, false},
		{r, "plain.invalid", "plain.invalid", true, false},
		{r, "skip.invalid", "skip.invalid", false, true},
		{r, "127.0.0.1:5000", "127.0.0.1:5000", false, false},
		{ri, "registry.invalid", "registry.invalid", true, true},
		{ri, "registry.invalid:443", "registry.invalid:443", true, true},
		{ri, "other.invalid:5000", "other.invalid:5000", true, true},
		{ri, "other.invalid:5001", "other.invalid:5001", false, false},
		{ri, "third.invalid", "third.invalid", false, false},
	}
	for _, tt := range tests {
		ep, err := tt.r.PushEndpoint(tt.host)
		if err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		if ep.Host != tt.wantHost || ep.PlainHTTP != tt.plain || ep.SkipVerify != tt.skipCheck || ep.Mirror {
			t.Errorf("%s: endpoint %s plain=%v skipVerify=%v mirror=%v, want %s plain=%v skipVerify=%v", tt.host, ep.Host, ep.PlainHTTP, ep.SkipVerify, ep.Mirror, tt.wantHost, tt.plain, tt.skipCheck)
		}
		wantScheme := "https"
		if tt.plain {
			wantScheme = "http"
		}
		// go-containerregistry falls back to plain HTTP exactly when the
		// registry's scheme is http, except for its RFC 1918 and
		// loopback heuristics, which the transport's refusal covers.
		if got := ep.Registry().Scheme(); tt.plain && got != wantScheme {
			t.Errorf("%s: registry scheme %s, want %s", tt.host, got, wantScheme)
		}
	}
	// r itself is unchanged by WithInsecure.
	if ep, _ := r.PushEndpoint("registry.invalid"); ep.PlainHTTP {
		t.Error("WithInsecure changed the original Resolver")
	}
}

func TestInsecureFromEnv(t *testing.T) {
	t.Setenv(hosts.InsecureEnv, "registry.invalid:5000, other.invalid")
	r := hosts.NewResolver(hosts.Options{CertsDirs: []string{}})
	for host, want := range map[string]bool{
		"registry.invalid:5000": true,
		"registry.invalid:5001": false,
		"other.invalid:1234":    true,
		"third.invalid":         false,
	} {
		ep, err := r.PushEndpoint(host)
		if err != nil {
			t.Fatal(err)
		}
		if ep.PlainHTTP != want || ep.SkipVerify != want {
			t.Errorf("%s: plain=%v skipVerify=%v, want %v", host, ep.PlainHTTP, ep.SkipVerify, want)
		}
	}
}

// TestPlainHTTPRefused sends nothing: the transport refuses before dialing.
func TestPlainHTTPRefused(t *testing.T) {
	r := hosts.NewResolver(noInsecure())
	ep, err := r.PushEndpoint("registry.invalid")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://registry.invalid/v2/", nil)
	_, err = ep.Transport.RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "plain HTTP refused to registry.invalid") || !strings.Contains(err.Error(), hosts.InsecureEnv) {
		t.Errorf("plain HTTP to registry.invalid: %v", err)
	}

	ep, err = r.WithInsecure("registry.invalid").PushEndpoint("registry.invalid")
	if err != nil {
		t.Fatal(err)
	}
	if !ep.PlainHTTP || ep.Registry().Scheme() != "http" {
		t.Errorf("insecure registry.invalid: plain=%v scheme=%s", ep.PlainHTTP, ep.Registry().Scheme())
	}
}

// TestPlainHTTPOffForLoopback: http = false turns plain HTTP off even for
// 127.0.0.1, where go-containerregistry would fall back to it.
func TestPlainHTTPOffForLoopback(t *testing.T) {
	srv := registrytest.Start(t)
	opts := noInsecure()
	opts.Config = &hosts.Config{Registries: map[string]hosts.Registry{srv.Host: {PlainHTTP: boolPtr(false)}}}
	r := hosts.NewResolver(opts)
	ep, err := r.PushEndpoint(srv.Host)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(srv.Ref("app:1"))
	_, err = remote.Head(ref, ep.RemoteOptions()...)
	if err == nil || !strings.Contains(err.Error(), "plain HTTP refused") {
		t.Fatalf("Head over refused plain HTTP: %v", err)
	}
	// By default the loopback registry is reached over plain HTTP.
	img, _ := random.Image(64, 1)
	srv.Push(t, "app:1", img)
	ep, _ = hosts.NewResolver(noInsecure()).PushEndpoint(srv.Host)
	if _, err := remote.Head(ref, ep.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}
}

func TestMirrors(t *testing.T) {
	opts := noInsecure()
	opts.Config = &hosts.Config{Registries: map[string]hosts.Registry{
		"docker.io": {Mirrors: []string{"127.0.0.1:5001", "mirror.example.com"}},
	}}
	r := hosts.NewResolver(opts)
	for _, host := range []string{"docker.io", "index.docker.io"} {
		eps, err := r.PullEndpoints(host)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ep := range eps {
			got = append(got, ep.Host)
		}
		if strings.Join(got, " ") != "127.0.0.1:5001 mirror.example.com index.docker.io" {
			t.Fatalf("pull endpoints of %s: %q", host, got)
		}
		if !eps[0].Mirror || !eps[1].Mirror || eps[2].Mirror {
			t.Errorf("mirror flags: %v %v %v", eps[0].Mirror, eps[1].Mirror, eps[2].Mirror)
		}
		if !eps[0].PlainHTTP || eps[1].PlainHTTP || eps[2].PlainHTTP {
			t.Errorf("plain HTTP: %v %v %v", eps[0].PlainHTTP, eps[1].PlainHTTP, eps[2].PlainHTTP)
		}
		ref, _ := name.ParseReference("busybox")
		m, err := eps[0].Reference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if m.String() != "127.0.0.1:5001/library/busybox:latest" {
			t.Errorf("busybox on the mirror: %s", m)
		}
		dref, _ := name.ParseReference("alpine@sha256:" + strings.Repeat("a", 64))
		if m, _ := eps[1].Reference(dref); m.String() != "mirror.example.com/library/alpine@sha256:"+strings.Repeat("a", 64) {
			t.Errorf("alpine by digest on the mirror: %s", m)
		}
	}
	push, err := r.PushEndpoint("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if push.Host != "index.docker.io" || push.Mirror {
		t.Errorf("push endpoint %s mirror=%v", push.Host, push.Mirror)
	}
	if eps, _ := r.PullEndpoints("ghcr.io"); len(eps) != 1 || eps[0].Host != "ghcr.io" {
		t.Errorf("ghcr.io without mirrors: %+v", eps)
	}
}

// TestPullThroughMirror tries the endpoints in order as a puller does: a
// dead mirror, a live one holding the image, then Docker Hub (never
// reached).
func TestPullThroughMirror(t *testing.T) {
	dead := registrytest.Start(t)
	dead.Close()
	live := registrytest.Start(t)
	img, _ := random.Image(64, 1)
	want := live.Push(t, "library/busybox:latest", img)

	opts := noInsecure()
	opts.Retry = hosts.Retry{Attempts: 1}
	opts.Config = &hosts.Config{Registries: map[string]hosts.Registry{
		"docker.io": {Mirrors: []string{dead.Host, live.Host}},
	}}
	eps, err := hosts.NewResolver(opts).PullEndpoints("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("busybox")
	var tried []string
	for _, ep := range eps {
		tried = append(tried, ep.Host)
		r, err := ep.Reference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(r, ep.RemoteOptions()...)
		if err != nil {
			continue
		}
		if desc.Digest != want {
			t.Errorf("digest %s, want %s", desc.Digest, want)
		}
		break
	}
	if strings.Join(tried, " ") != dead.Host+" "+live.Host {
		t.Errorf("tried %q", tried)
	}
}

// hangingServer accepts connections and never answers until the test ends.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				<-done
				c.Close()
			}()
		}
	}()
	return l.Addr().String()
}

func TestHangingRegistryTimesOut(t *testing.T) {
	host := hangingServer(t)
	opts := noInsecure()
	opts.Timeouts = hosts.Timeouts{TLSHandshake: 300 * time.Millisecond, ResponseHeader: 300 * time.Millisecond}
	opts.Retry = hosts.Retry{Attempts: 3, Backoff: 10 * time.Millisecond}
	ep, err := hosts.NewResolver(opts).PushEndpoint(host)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/app:1")
	start := time.Now()
	_, err = remote.Head(ref, append(ep.RemoteOptions(), remote.WithContext(context.Background()))...)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Head of a hanging registry succeeded")
	}
	// HTTPS times out in its handshake, the plain HTTP fallback waiting
	// for headers; timeouts are not retried.
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error is not a timeout: %v", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("failed after %v, want about 600ms", elapsed)
	}
	t.Logf("failed after %v: %v", elapsed, err)
}

// countingServer answers every request with h, counting /v2/ requests.
func countingServer(t *testing.T, h http.HandlerFunc) (host string, pings *atomic.Int32) {
	t.Helper()
	pings = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), pings
}

func TestRetries(t *testing.T) {
	status500 := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"backend down"}]}`, http.StatusInternalServerError)
	}
	drop := func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}
	status404 := func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
	tests := []struct {
		name     string
		h        http.HandlerFunc
		attempts int
		want     int32
		errText  string
	}{
		{"500 retried", status500, 3, 3, "backend down"},
		{"500 once when retries are off", status500, 1, 1, "backend down"},
		{"dropped connection retried", drop, 3, 3, "EOF"},
		{"404 not retried", status404, 3, 1, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, pings := countingServer(t, tt.h)
			opts := noInsecure()
			opts.Retry = hosts.Retry{Attempts: tt.attempts, Backoff: 5 * time.Millisecond}
			ep, err := hosts.NewResolver(opts).PushEndpoint(host)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := name.ParseReference(host + "/app:1")
			_, err = remote.Head(ref, ep.RemoteOptions()...)
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("Head: %v, want an error with %q", err, tt.errText)
			}
			if got := pings.Load(); got != tt.want {
				t.Errorf("%d requests, want %d", got, tt.want)
			}
		})
	}
}

// TestRetryRecovers: a registry failing twice then answering is reached.
func TestRetryRecovers(t *testing.T) {
	srv := registrytest.Start(t, func(next http.Handler) http.Handler {
		var n atomic.Int32
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	img, _ := random.Image(64, 1)
	want := srv.Push(t, "app:1", img)
	opts := noInsecure()
	opts.Retry = hosts.Retry{Attempts: 3, Backoff: 5 * time.Millisecond}
	ep, _ := hosts.NewResolver(opts).PushEndpoint(srv.Host)
	ref, _ := name.ParseReference(srv.Ref("app:1"))
	desc, err := remote.Head(ref, ep.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Errorf("digest %s, want %s", desc.Digest, want)
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransportHook: Options.Transport carries the requests of every host,
// of a Resolver derived by WithInsecure too, and plain HTTP stays refused
// to hosts not allowed it.
func TestTransportHook(t *testing.T) {
	var seen atomic.Int32
	opts := noInsecure()
	opts.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen.Add(1)
		return nil, errors.New("hook: " + r.URL.String())
	})
	r := hosts.NewResolver(opts)
	for _, tt := range []struct {
		r    *hosts.Resolver
		url  string
		want string
	}{
		{r, "https://registry.invalid/v2/", "hook: https://registry.invalid/v2/"},
		{r, "http://127.0.0.1:5000/v2/", "hook: http://127.0.0.1:5000/v2/"},
		{r, "http://registry.invalid/v2/", "plain HTTP refused"},
		{r.WithInsecure("registry.invalid"), "http://registry.invalid/v2/", "hook: http://registry.invalid/v2/"},
	} {
		u, _ := url.Parse(tt.url)
		ep, err := tt.r.PushEndpoint(u.Host)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
		if _, err := ep.Transport.RoundTrip(req); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.url, err, tt.want)
		}
	}
	if n := seen.Load(); n != 3 {
		t.Errorf("the hook carried %d requests, want 3", n)
	}
}
