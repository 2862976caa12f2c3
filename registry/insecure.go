package registry

import "github.com/strata-build/strata/registry/hosts"

// WithInsecure returns opts with the registries of the normalized names
// allowed over plain HTTP or unverified TLS, for one output's
// registry.insecure=true. Without a Resolver it starts from the default
// configuration file's; one that cannot be read leaves Hosts nil, and the
// pull or push reports why.
func (o Options) WithInsecure(names ...string) Options {
	if o.Hosts == nil {
		cfg, err := hosts.LoadConfig("")
		if err != nil {
			return o
		}
		o.Hosts = hosts.NewResolver(hosts.Options{Config: cfg})
	}
	hs := make([]string, 0, len(names))
	for _, n := range names {
		hs = append(hs, registryHost(n))
	}
	o.Hosts = o.Hosts.WithInsecure(hs...)
	return o
}
