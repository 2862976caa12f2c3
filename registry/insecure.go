package registry

// WithInsecure returns opts with the registries of the normalized names
// allowed over plain HTTP or unverified TLS, for one output's
// registry.insecure=true.
func (o Options) WithInsecure(names ...string) Options {
	if o.Insecure == nil {
		o.Insecure = InsecureFromEnv()
	}
	list := append([]string(nil), o.Insecure...)
	for _, n := range names {
		list = append(list, registryHost(n))
	}
	o.Insecure = list
	return o
}
