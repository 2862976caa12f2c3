package registry

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// InsecureEnv names the environment variable listing registries reached over
// plain HTTP.
const InsecureEnv = "STRATA_INSECURE_REGISTRIES"

// InsecureFromEnv returns the hosts listed in STRATA_INSECURE_REGISTRIES,
// separated by commas or spaces. It never returns nil.
func InsecureFromEnv() []string {
	hosts := strings.FieldsFunc(os.Getenv(InsecureEnv), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if hosts == nil {
		hosts = []string{}
	}
	return hosts
}

// parse turns a normalized name into a registry reference, marked insecure
// when its host is listed in the Puller's options. Localhost and loopback
// hosts are plain HTTP whatever the list says.
func (p *Puller) parse(normalized string) (name.Reference, error) {
	var opts []name.Option
	if p.insecure(registryHost(normalized)) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(normalized, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse reference %s: %w", normalized, err)
	}
	return r, nil
}

// insecure reports whether host is listed as a plain-HTTP registry. An entry
// without a port matches the host on any port.
func (p *Puller) insecure(host string) bool {
	bare := host
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		bare = host[:i]
	}
	for _, h := range p.opts.Insecure {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://"), "/")
		if h == host || h == bare {
			return true
		}
	}
	return false
}

// registryHost is the domain of a normalized name.
func registryHost(normalized string) string {
	host, _, _ := strings.Cut(normalized, "/")
	return host
}
