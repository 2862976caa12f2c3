package hosts

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultCertsDirs are the roots searched for per-host TLS material, as
// docker and podman lay it out: ROOT/HOST[:PORT]/*.crt (CAs), *.cert with
// *.key (client certificates).
var DefaultCertsDirs = []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}

// Options configures a Resolver. The zero value is usable.
type Options struct {
	// Config is the registry configuration; nil configures nothing.
	Config *Config
	// CertsDirs are the certs.d roots; nil means DefaultCertsDirs, an
	// empty non-nil slice none.
	CertsDirs []string
	// Keychain finds credentials per host; nil means Keychain(""), the
	// docker config file named by $DOCKER_CONFIG when a request is made.
	Keychain authn.Keychain
	// Insecure lists hosts ("host" matches any port, or "host:port")
	// reached over plain HTTP and without TLS verification; nil means the
	// list in STRATA_INSECURE_REGISTRIES.
	Insecure []string
	// Timeouts bound each request; zero fields take the defaults.
	Timeouts Timeouts
	// Retry is the retry policy; zero fields take the defaults.
	Retry Retry
	// Transport, if set, carries the requests to every host in place of
	// the transport the Resolver builds per host, so the TLS settings
	// (certs.d, ca, keypair, insecure) and Timeouts are then Transport's
	// to apply; plain HTTP is still refused to the hosts not allowed it.
	// It is a hook for tests: fault injection, a registry reached under
	// another name, requests kept on loopback.
	Transport http.RoundTripper
}

// Timeouts bound the phases of one request so that a registry that stops
// answering fails the request instead of hanging it. They do not bound
// the transfer of a body once it has started: cancel the context for that.
type Timeouts struct {
	// Dial bounds opening the TCP connection; 0 means 30s.
	Dial time.Duration
	// TLSHandshake bounds the TLS handshake; 0 means 10s.
	TLSHandshake time.Duration
	// ResponseHeader bounds the wait for the response's headers once the
	// request is sent; 0 means 60s.
	ResponseHeader time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Dial <= 0 {
		t.Dial = 30 * time.Second
	}
	if t.TLSHandshake <= 0 {
		t.TLSHandshake = 10 * time.Second
	}
	if t.ResponseHeader <= 0 {
		t.ResponseHeader = 60 * time.Second
	}
	return t
}

// Resolver decides how each registry host is reached. It is safe for
// concurrent use and keeps one connection pool per host; build one per
// process (or per build, through WithInsecure) and share it.
type Resolver struct {
	cfg       *Config
	certsDirs []string
	keychain  authn.Keychain
	insecure  []string
	timeouts  Timeouts
	retry     Retry
	transport http.RoundTripper

	mu         sync.Mutex
	transports map[string]http.RoundTripper
}

// NewResolver returns a Resolver for opts.
func NewResolver(opts Options) *Resolver {
	r := &Resolver{
		cfg:       opts.Config,
		certsDirs: opts.CertsDirs,
		keychain:  opts.Keychain,
		insecure:  opts.Insecure,
		timeouts:  opts.Timeouts.withDefaults(),
		retry:     opts.Retry.withDefaults(),
		transport: opts.Transport,
	}
	if r.cfg == nil {
		r.cfg = &Config{}
	}
	if r.certsDirs == nil {
		r.certsDirs = DefaultCertsDirs
	}
	if r.keychain == nil {
		r.keychain = Keychain("")
	}
	if r.insecure == nil {
		r.insecure = insecureFromEnv()
	}
	r.transports = map[string]http.RoundTripper{}
	return r
}

// WithInsecure returns a Resolver like r that also reaches hosts over plain
// HTTP and without TLS verification, as an output's registry.insecure=true
// asks. r is unchanged.
func (r *Resolver) WithInsecure(hosts ...string) *Resolver {
	n := &Resolver{
		cfg:        r.cfg,
		certsDirs:  r.certsDirs,
		keychain:   r.keychain,
		insecure:   append(append([]string{}, r.insecure...), hosts...),
		timeouts:   r.timeouts,
		retry:      r.retry,
		transport:  r.transport,
		transports: map[string]http.RoundTripper{},
	}
	return n
}

// Keychain is the keychain the Resolver's endpoints authenticate with.
func (r *Resolver) Keychain() authn.Keychain { return r.keychain }

// Endpoint is one address a host is reached at: the host itself, or one of
// its mirrors.
type Endpoint struct {
	// Host is where requests go ("127.0.0.1:5001", "index.docker.io" for
	// Docker Hub).
	Host string
	// Mirror is true when Host is a mirror of the host asked for.
	Mirror bool
	// PlainHTTP allows plain HTTP: HTTPS is tried first, and plain HTTP
	// if HTTPS fails. Without it plain HTTP requests are refused.
	PlainHTTP bool
	// SkipVerify turns TLS certificate verification off.
	SkipVerify bool
	// Transport carries requests to Host with its TLS settings and the
	// Resolver's timeouts. It neither authenticates nor retries:
	// RemoteOptions adds both.
	Transport http.RoundTripper

	keychain authn.Keychain
	retry    Retry
}

// PullEndpoints returns where to pull images of host ("docker.io",
// "ghcr.io", "127.0.0.1:5000") from, in the order to try them: the
// configured mirrors, then the host itself. Try the next one when a mirror
// fails; the last error is the host's own.
func (r *Resolver) PullEndpoints(host string) ([]Endpoint, error) {
	h, err := canonicalHost(host)
	if err != nil {
		return nil, err
	}
	var eps []Endpoint
	for _, m := range r.cfg.registry(h).Mirrors {
		ep, err := r.endpoint(m)
		if err != nil {
			return nil, fmt.Errorf("mirror %s of %s: %w", m, h, err)
		}
		ep.Mirror = true
		eps = append(eps, ep)
	}
	ep, err := r.endpoint(h)
	if err != nil {
		return nil, err
	}
	return append(eps, ep), nil
}

// PushEndpoint returns where to push images of host: the host itself,
// never a mirror. Login uses it too.
func (r *Resolver) PushEndpoint(host string) (Endpoint, error) {
	h, err := canonicalHost(host)
	if err != nil {
		return Endpoint{}, err
	}
	return r.endpoint(h)
}

// endpoint builds (or reuses) the endpoint of a canonical host.
func (r *Resolver) endpoint(host string) (Endpoint, error) {
	cfg := r.cfg.registry(host)
	ep := Endpoint{Host: apiHost(host), keychain: r.keychain, retry: r.retry}
	ep.PlainHTTP = isLoopback(host)
	if cfg.PlainHTTP != nil {
		ep.PlainHTTP = *cfg.PlainHTTP
	}
	ep.SkipVerify = cfg.Insecure != nil && *cfg.Insecure
	if hostListed(r.insecure, host) {
		ep.PlainHTTP, ep.SkipVerify = true, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.transports[host]; ok {
		ep.Transport = t
		return ep, nil
	}
	tlsCfg, err := r.tlsConfig(host, cfg, ep.SkipVerify)
	if err != nil {
		return Endpoint{}, err
	}
	// HTTP/1.1 only: blobs move over parallel connections rather than
	// streams of one, and a TLS failure the server reports after the
	// handshake (a client certificate missing or refused) keeps its
	// message instead of HTTP/2's "client conn could not be established".
	base := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   r.timeouts.Dial,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   r.timeouts.TLSHandshake,
		ResponseHeaderTimeout: r.timeouts.ResponseHeader,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
	}
	var t http.RoundTripper = base
	if r.transport != nil {
		t = r.transport
	}
	if !ep.PlainHTTP {
		t = httpsOnly{host: host, inner: t}
	}
	r.transports[host] = t
	ep.Transport = t
	return ep, nil
}

// errPlainHTTP is returned for a plain HTTP request to a host that is not
// allowed one.
var errPlainHTTP = errors.New("plain HTTP refused")

// httpsOnly refuses plain HTTP requests: the registry behind it is reached
// over TLS only, so no request (nor a redirect, nor a token server) may
// downgrade it.
type httpsOnly struct {
	host  string
	inner http.RoundTripper
}

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w to %s for registry %s: it is not a loopback host nor marked insecure (http = true in the registry config, %s, or registry.insecure=true)", errPlainHTTP, req.URL.Host, t.host, InsecureEnv)
	}
	return t.inner.RoundTrip(req)
}

// Registry is the endpoint's host as go-containerregistry names it, marked
// insecure when plain HTTP is allowed.
func (e Endpoint) Registry() name.Registry {
	var opts []name.Option
	if e.PlainHTTP {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(e.Host, opts...)
	if err != nil {
		// Host was checked by canonicalHost.
		panic(fmt.Sprintf("hosts: endpoint host %q: %v", e.Host, err))
	}
	return reg
}

// Repository is the repository path repo ("library/busybox") on this
// endpoint.
func (e Endpoint) Repository(repo string) (name.Repository, error) {
	var opts []name.Option
	if e.PlainHTTP {
		opts = append(opts, name.Insecure)
	}
	return name.NewRepository(e.Host+"/"+repo, opts...)
}

// Reference is ref with its registry replaced by this endpoint, keeping
// the repository path ("library/" included for Docker Hub images) and the
// tag or digest: "busybox" on mirror 127.0.0.1:5001 is
// "127.0.0.1:5001/library/busybox:latest".
func (e Endpoint) Reference(ref name.Reference) (name.Reference, error) {
	repo := e.Registry().Repo(ref.Context().RepositoryStr())
	switch r := ref.(type) {
	case name.Digest:
		return repo.Digest(r.DigestStr()), nil
	case name.Tag:
		return repo.Tag(r.TagStr()), nil
	default:
		return nil, fmt.Errorf("reference %s: neither tag nor digest", ref)
	}
}

// RemoteOptions are the go-containerregistry options that reach this
// endpoint: its transport, the Resolver's keychain and retry policy. Add
// remote.WithContext and others after them.
func (e Endpoint) RemoteOptions() []remote.Option {
	return append([]remote.Option{
		remote.WithTransport(e.Transport),
		remote.WithAuthFromKeychain(e.keychain),
	}, e.retry.remoteOptions()...)
}
