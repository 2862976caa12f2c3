package hosts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/strata-build/strata/internal/atomicfile"
)

// Login checks user and password against host, reached through r as a
// push would, and stores them as docker login does, in the config.json of
// DockerConfigDir(configDir): through the credential helper configured for
// the host (credHelpers, else credsStore), else base64-encoded in "auths".
// The file is replaced atomically and kept mode 0600; a config.json that
// does not parse is left alone and reported. Credentials the registry
// refuses are an ErrAuth error and are not stored.
func Login(ctx context.Context, r *Resolver, host, user, password, configDir string) error {
	h, err := canonicalHost(host)
	if err != nil {
		return err
	}
	if user == "" || password == "" {
		return fmt.Errorf("login to %s: username and password are required", h)
	}
	ep, err := r.PushEndpoint(h)
	if err != nil {
		return fmt.Errorf("login to %s: %w", h, err)
	}
	if err := verify(ctx, ep, h, user, password); err != nil {
		return err
	}
	if err := storeCredentials(DockerConfigDir(configDir), h, user, password); err != nil {
		return fmt.Errorf("login to %s: store credentials: %w", h, err)
	}
	return nil
}

// verify pings the endpoint's /v2/, authenticates as its challenge asks
// (a token for no scope from a Bearer realm, or Basic) and checks that
// /v2/ then answers 200.
func verify(ctx context.Context, ep Endpoint, host, user, password string) error {
	fail := func(err error) error {
		if err = CheckAuth(host, err); errors.Is(err, ErrAuth) {
			return err
		}
		return fmt.Errorf("login to %s: %w", host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	reg := ep.Registry()
	tr, err := transport.NewWithContext(ctx, reg, auth, ep.retry.wrap(ep.Transport), nil)
	if err != nil {
		return fail(err)
	}
	// The scheme is the one the ping found: transport rewrites it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return fail(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return fail(err)
	}
	return nil
}

// credentialHelper is the docker-credential-NAME program holding the
// credentials stored under key, or "" for config.json itself.
func credentialHelper(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok {
		return h
	}
	return cf.CredentialsStore
}

// storeCredentials writes host's credentials as docker login does.
func storeCredentials(dir, host, user, password string) error {
	cf, err := config.Load(dir)
	if err != nil {
		return err
	}
	f := &configFile{cf: cf}
	key := authKey(host)
	ac := types.AuthConfig{Username: user, Password: password, ServerAddress: key}
	if helper := credentialHelper(cf, key); helper != "" {
		return credentials.NewNativeStore(f, helper).Store(ac)
	}
	f.GetAuthConfigs()[key] = ac
	return f.Save()
}

// Logout removes host's credentials from the config.json of
// DockerConfigDir(configDir) and from its credential helper, under the
// keys docker login writes (and, as docker logout does, the "https://HOST"
// and "http://HOST" keys older clients wrote). It reports whether there
// were any; having none is not an error (docker logout succeeds too).
func Logout(host, configDir string) (removed bool, err error) {
	h, err := canonicalHost(host)
	if err != nil {
		return false, err
	}
	cf, err := config.Load(DockerConfigDir(configDir))
	if err != nil {
		return false, err
	}
	f := &configFile{cf: cf}
	keys := []string{authKey(h)}
	if h != dockerHub {
		keys = append(keys, "https://"+h, "http://"+h)
	}
	dirty := false
	for _, key := range keys {
		helper := credentialHelper(cf, key)
		if helper == "" {
			if _, ok := f.GetAuthConfigs()[key]; ok {
				delete(f.GetAuthConfigs(), key)
				removed, dirty = true, true
			}
			continue
		}
		store := credentials.NewNativeStore(f, helper)
		ac, err := store.Get(key)
		if err != nil {
			return removed, fmt.Errorf("logout from %s: %w", h, err)
		}
		if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
			// Perhaps the empty entry a helper login leaves in the file.
			if _, ok := f.GetAuthConfigs()[key]; ok {
				delete(f.GetAuthConfigs(), key)
				dirty = true
			}
			continue
		}
		if err := store.Erase(key); err != nil {
			return removed, fmt.Errorf("logout from %s: %w", h, err)
		}
		removed = true
	}
	if dirty {
		if err := f.Save(); err != nil {
			return removed, fmt.Errorf("logout from %s: %w", h, err)
		}
	}
	return removed, nil
}

// configFile saves a docker config file atomically: a temporary file in
// the same directory, mode 0600 (owner kept when replacing a file), synced,
// renamed over the file (or the file a symbolic link names), and the
// directory synced.
type configFile struct{ cf *configfile.ConfigFile }

func (f *configFile) GetAuthConfigs() map[string]types.AuthConfig { return f.cf.GetAuthConfigs() }

func (f *configFile) GetFilename() string { return f.cf.Filename }

func (f *configFile) Save() error {
	path := f.cf.Filename
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := atomicfile.New(path, 0o600)
	if err != nil {
		return err
	}
	defer tmp.Close()
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
	}
	if err := f.cf.SaveToWriter(tmp); err != nil {
		return err
	}
	return tmp.Commit()
}
