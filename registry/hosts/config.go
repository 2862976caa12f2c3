package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ConfigEnv names the environment variable that overrides the path of the
// registry configuration file.
const ConfigEnv = "STRATA_CONFIG"

// Config is strata's registry configuration file: one [registry."HOST"]
// table per registry host, shaped like the registry sections of BuildKit's
// buildkitd.toml so they can be copied over. The zero Config (no file) is
// valid and configures nothing.
//
//	[registry."docker.io"]
//	  mirrors = ["127.0.0.1:5001", "mirror.example.com"]
//	[registry."127.0.0.1:5000"]
//	  http = true          # plain HTTP
//	  insecure = true      # TLS without verification
//	  ca = ["/etc/certs/ca.pem"]
//	  [[registry."127.0.0.1:5000".keypair]]
//	    key = "/etc/certs/client.key"
//	    cert = "/etc/certs/client.cert"
type Config struct {
	// Registries maps a host ("docker.io", "127.0.0.1:5000") to its
	// settings. LoadConfig writes keys in canonical form: Docker Hub's
	// aliases (index.docker.io, registry-1.docker.io) become "docker.io".
	Registries map[string]Registry `toml:"registry"`
	// Path is the file the configuration was read from; empty when none.
	Path string `toml:"-"`
}

// Registry is the configuration of one registry host.
type Registry struct {
	// Mirrors ("host[:port]") are tried in order before the host itself
	// when pulling, with the same repository path. Pushes never use them.
	Mirrors []string `toml:"mirrors"`
	// PlainHTTP ("http") reaches the host over plain HTTP (HTTPS is still
	// tried first). Set to false it also turns plain HTTP off for a
	// loopback host.
	PlainHTTP *bool `toml:"http"`
	// Insecure skips TLS certificate verification.
	Insecure *bool `toml:"insecure"`
	// CA lists PEM files of certificate authorities trusted for this host
	// besides the system's.
	CA []string `toml:"ca"`
	// KeyPairs are client certificates presented to this host.
	KeyPairs []KeyPair `toml:"keypair"`
	// TLSConfigDir lists directories laid out as a certs.d host directory
	// (*.crt CAs, *.cert and *.key client pairs).
	TLSConfigDir []string `toml:"tlsconfigdir"`
}

// KeyPair is a client certificate and its private key, both PEM files.
type KeyPair struct {
	Key  string `toml:"key"`
	Cert string `toml:"cert"`
}

// DefaultConfigPath is where the configuration is read when no path is
// given: $STRATA_CONFIG if set, else /etc/strata/strata.toml for root and
// $XDG_CONFIG_HOME/strata/strata.toml (XDG_CONFIG_HOME defaulting to
// ~/.config) for other users.
func DefaultConfigPath() string {
	return defaultConfigPath(os.Geteuid(), os.Getenv)
}

func defaultConfigPath(euid int, getenv func(string) string) string {
	if p := getenv(ConfigEnv); p != "" {
		return p
	}
	if euid == 0 {
		return "/etc/strata/strata.toml"
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "strata", "strata.toml")
}

// LoadConfig reads the configuration file at path. An empty path means
// DefaultConfigPath, and then a missing file is an empty configuration
// unless the path came from $STRATA_CONFIG; a missing file that was named
// explicitly is an error. Unknown keys are errors naming the key, the file
// and the line. Relative certificate paths are taken from the file's
// directory.
func LoadConfig(path string) (*Config, error) {
	mayBeMissing := false
	if path == "" {
		path = DefaultConfigPath()
		mayBeMissing = os.Getenv(ConfigEnv) == ""
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && mayBeMissing {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry config: %w", err)
	}
	return parseConfig(path, data)
}

// parseConfig decodes and checks a configuration read from path.
func parseConfig(path string, data []byte) (*Config, error) {
	var raw Config
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, configError(path, err)
	}
	cfg := &Config{Path: path, Registries: map[string]Registry{}}
	base := filepath.Dir(path)
	hosts := make([]string, 0, len(raw.Registries))
	for h := range raw.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		reg := raw.Registries[h]
		host, err := canonicalHost(h)
		if err != nil {
			return nil, fmt.Errorf("%s: [registry.%q]: %w", path, h, err)
		}
		if _, dup := cfg.Registries[host]; dup {
			return nil, fmt.Errorf("%s: [registry.%q]: %s is configured twice", path, h, host)
		}
		for i, m := range reg.Mirrors {
			if reg.Mirrors[i], err = canonicalHost(m); err != nil {
				return nil, fmt.Errorf("%s: [registry.%q]: mirror: %w", path, h, err)
			}
		}
		for i, kp := range reg.KeyPairs {
			if kp.Key == "" || kp.Cert == "" {
				return nil, fmt.Errorf("%s: [registry.%q]: keypair needs both key and cert", path, h)
			}
			reg.KeyPairs[i] = KeyPair{Key: resolvePath(base, kp.Key), Cert: resolvePath(base, kp.Cert)}
		}
		for i, f := range reg.CA {
			reg.CA[i] = resolvePath(base, f)
		}
		for i, d := range reg.TLSConfigDir {
			reg.TLSConfigDir[i] = resolvePath(base, d)
		}
		cfg.Registries[host] = reg
	}
	return cfg, nil
}

// configError names the file and line of a decoding error, and each key
// the configuration does not know.
func configError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		msgs := make([]string, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %s", path, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %s", path, row, col, de.Error())
	}
	return fmt.Errorf("%s: %w", path, err)
}

func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// registry returns the configuration of a canonical host.
func (c *Config) registry(host string) Registry {
	if c == nil {
		return Registry{}
	}
	return c.Registries[host]
}
