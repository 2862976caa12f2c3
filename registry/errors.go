package registry

import "github.com/strata-build/strata/registry/hosts"

// ErrAuth is wrapped by errors of a registry that refused the credentials
// offered (or their absence): the message reads "authentication failed for
// HOST: " followed by what the registry said. It is hosts.ErrAuth: pulls,
// pushes and logins fail alike.
var ErrAuth = hosts.ErrAuth
