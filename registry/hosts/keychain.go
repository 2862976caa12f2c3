package hosts

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrAuth matches (errors.Is) the errors of a registry refusing
// credentials: a 401 or 403 answer, from the registry or its token server.
// Their text is "authentication failed for HOST: " and the registry's own
// message.
var ErrAuth = errors.New("authentication failed")

// authError is a refusal of credentials by host.
type authError struct {
	host string
	err  error
}

func (e *authError) Error() string {
	return fmt.Sprintf("authentication failed for %s: %v", e.host, e.err)
}

func (e *authError) Unwrap() []error { return []error{ErrAuth, e.err} }

// CheckAuth returns err marked as ErrAuth for host when it is a registry's
// (or token server's) 401 or 403 answer, and err unchanged otherwise. Pull
// and push pass the errors of go-containerregistry through it.
func CheckAuth(host string, err error) error {
	if err == nil || errors.Is(err, ErrAuth) {
		return err
	}
	var te *transport.Error
	if !errors.As(err, &te) || (te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden) {
		return err
	}
	if h, cerr := canonicalHost(host); cerr == nil {
		host = h
	}
	return &authError{host: host, err: err}
}

// DockerConfigDir is the directory of docker's config.json: dir when not
// empty, else $DOCKER_CONFIG, else ~/.docker. The environment is read at
// each call.
func DockerConfigDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv(config.EnvOverrideConfigDir); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, ".docker")
}

// Keychain returns the keychain docker's clients use: the config.json of
// DockerConfigDir(configDir), read at each lookup, with its "auths"
// entries, its "credHelpers" (per host) and "credsStore" (default)
// programs docker-credential-NAME found on PATH, and $DOCKER_AUTH_CONFIG.
// Docker Hub's credentials are under DockerHubAuthKey. A host without
// credentials is anonymous.
func Keychain(configDir string) authn.Keychain { return dockerKeychain{dir: configDir} }

type dockerKeychain struct{ dir string }

func (k dockerKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host, err := canonicalHost(res.RegistryStr())
	if err != nil {
		return nil, err
	}
	cf, err := config.Load(DockerConfigDir(k.dir))
	if err != nil {
		return nil, err
	}
	ac, err := cf.GetAuthConfig(authKey(host))
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", host, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && ac.RegistryToken == "" && ac.Auth == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}), nil
}
