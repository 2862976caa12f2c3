// Package hosts is how strata reaches a registry host: which addresses to
// try, over which scheme and TLS settings, within which timeouts, with how
// many retries, and with whose credentials. Image pull and push use it; so
// do `strata login` and `strata logout`.
//
// The lifecycle:
//
//  1. LoadConfig reads the registry configuration file (DefaultConfigPath,
//     or the CLI's --config): per host, mirrors, plain HTTP, TLS
//     verification, CAs and client certificates, as BuildKit's
//     buildkitd.toml spells them.
//  2. NewResolver builds a Resolver from it. TLS material also comes from
//     the certs.d directories docker and podman read
//     (/etc/docker/certs.d/HOST[:PORT]/ and /etc/containers/certs.d/...),
//     credentials from the docker config file (Keychain). WithInsecure
//     derives a Resolver that also reaches some hosts over plain HTTP
//     without TLS verification, for one build's outputs
//     (registry.insecure=true).
//  3. For each image, PullEndpoints gives the endpoints to try in order
//     (mirrors, then the host itself) and PushEndpoint the host alone. An
//     Endpoint rewrites the image reference to its own host (Reference)
//     and gives the go-containerregistry options that reach it
//     (RemoteOptions): its transport, the keychain and the retry policy.
//     Bearer and Basic auth, with pull, push and cross-repository mount
//     scopes, are go-containerregistry's, driven by those options.
//  4. Errors go through CheckAuth, so that a registry refusing the
//     credentials reads "authentication failed for HOST: ..." and matches
//     ErrAuth.
//
// Login checks credentials against a registry and stores them as docker
// login does (credential helper or config.json); Logout removes them.
//
// Plain HTTP is allowed only for loopback hosts (localhost, 127.0.0.0/8,
// ::1), hosts with http = true in the configuration, hosts listed in
// STRATA_INSECURE_REGISTRIES, and hosts given to WithInsecure; a request
// over plain HTTP to any other host is refused before it is sent.
package hosts

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// InsecureEnv names the environment variable listing registries
// ("host[:port]", comma or space separated) reached over plain HTTP and
// without TLS verification. It is the same variable package registry reads.
const InsecureEnv = "STRATA_INSECURE_REGISTRIES"

// dockerHub is the canonical name of Docker Hub, as references spell it
// and configurations key it.
const dockerHub = "docker.io"

// dockerHubAPI is the host go-containerregistry sends Docker Hub's API
// requests to.
const dockerHubAPI = name.DefaultRegistry

// DockerHubAuthKey is the key docker stores Docker Hub's credentials
// under, in config.json and in credential helpers.
const DockerHubAuthKey = "https://index.docker.io/v1/"

// canonicalHost turns a registry host as a user or a reference spells it
// into the form configurations and credentials use: lower case, without
// scheme or path, Docker Hub's aliases folded into "docker.io".
func canonicalHost(h string) (string, error) {
	orig := h
	h = strings.TrimSpace(h)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h, _, _ = strings.Cut(h, "/")
	h = strings.ToLower(h)
	if h == "" {
		return "", fmt.Errorf("empty registry host %q", orig)
	}
	if u, err := url.Parse("//" + h); err != nil || u.Host != h {
		return "", fmt.Errorf("invalid registry host %q", orig)
	}
	switch h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		h = dockerHub
	}
	return h, nil
}

// apiHost is the host requests for a canonical host go to.
func apiHost(host string) string {
	if host == dockerHub {
		return dockerHubAPI
	}
	return host
}

// authKey is the key a canonical host's credentials are stored under.
func authKey(host string) string {
	if host == dockerHub {
		return DockerHubAuthKey
	}
	return host
}

// splitHostPort splits "host:port", "[v6]:port", "host" and "v6".
func splitHostPort(h string) (host, port string) {
	if hh, p, err := net.SplitHostPort(h); err == nil {
		return hh, p
	}
	return strings.Trim(h, "[]"), ""
}

// isLoopback reports whether a host names this machine: localhost, an
// address in 127.0.0.0/8, or ::1, with any port.
func isLoopback(h string) bool {
	host, _ := splitHostPort(h)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// insecureFromEnv returns the hosts listed in STRATA_INSECURE_REGISTRIES.
func insecureFromEnv() []string {
	return strings.FieldsFunc(os.Getenv(InsecureEnv), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// hostListed reports whether a canonical host is in list. An entry without
// a port matches the host on any port.
func hostListed(list []string, host string) bool {
	bare, _ := splitHostPort(host)
	for _, e := range list {
		c, err := canonicalHost(e)
		if err != nil {
			continue
		}
		if c == host {
			return true
		}
		if eh, ep := splitHostPort(c); ep == "" && strings.EqualFold(eh, bare) {
			return true
		}
	}
	return false
}
