package registry

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrAuth is wrapped by errors of a registry that refused the credentials
// offered (or their absence): the message reads "authentication failed for
// HOST: " followed by what the registry said.
var ErrAuth = errors.New("authentication failed")

// authError marks err as an authentication failure at host when the
// registry (or its token server) answered 401 or 403; other errors are
// returned as they are.
func authError(host string, err error) error {
	if err == nil || errors.Is(err, ErrAuth) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w for %s: %w", ErrAuth, host, err)
	}
	return err
}
