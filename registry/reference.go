package registry

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// parseName turns a normalized name into a registry reference. Its
// registry is the name's; where requests go, and over which scheme, is
// decided per endpoint by package hosts.
func parseName(normalized string) (name.Reference, error) {
	r, err := name.ParseReference(normalized)
	if err != nil {
		return nil, fmt.Errorf("parse reference %s: %w", normalized, err)
	}
	return r, nil
}

// registryHost is the domain of a normalized name ("docker.io",
// "127.0.0.1:5000").
func registryHost(normalized string) string {
	host, _, _ := strings.Cut(normalized, "/")
	return host
}
