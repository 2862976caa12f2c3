package hosts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want map[string]Registry
		err  string // substring of the error; "" means success
	}{
		{name: "empty", toml: "", want: map[string]Registry{}},
		{
			name: "buildkitd sections",
			toml: `
[registry."docker.io"]
  mirrors = ["127.0.0.1:5001", "Mirror.Example.com"]
[registry."127.0.0.1:5000"]
  http = true
  insecure = true
  ca = ["/etc/certs/ca.pem", "rel/ca.pem"]
  tlsconfigdir = ["certs"]
  [[registry."127.0.0.1:5000".keypair]]
    key = "/etc/certs/client.key"
    cert = "/etc/certs/client.cert"
  [[registry."127.0.0.1:5000".keypair]]
    key = "k2.key"
    cert = "k2.cert"
[registry."ghcr.io"]
  http = false
`,
			want: map[string]Registry{
				"docker.io": {Mirrors: []string{"127.0.0.1:5001", "mirror.example.com"}},
				"127.0.0.1:5000": {
					PlainHTTP:    ptr(true),
					Insecure:     ptr(true),
					CA:           []string{"/etc/certs/ca.pem", "/conf/rel/ca.pem"},
					TLSConfigDir: []string{"/conf/certs"},
					KeyPairs: []KeyPair{
						{Key: "/etc/certs/client.key", Cert: "/etc/certs/client.cert"},
						{Key: "/conf/k2.key", Cert: "/conf/k2.cert"},
					},
				},
				"ghcr.io": {PlainHTTP: ptr(false)},
			},
		},
		{
			name: "docker hub aliases fold",
			toml: "[registry.\"registry-1.docker.io\"]\nmirrors = [\"https://m.example.com/\"]\n",
			want: map[string]Registry{"docker.io": {Mirrors: []string{"m.example.com"}}},
		},
		{
			name: "alias configured twice",
			toml: "[registry.\"docker.io\"]\nhttp = true\n[registry.\"index.docker.io\"]\nhttp = true\n",
			err:  "docker.io is configured twice",
		},
		{name: "unknown key", toml: "[registry.\"x.io\"]\nmirrors = []\nbogus = 1\n", err: "/conf/strata.toml:3: unknown key registry.x.io.bogus"},
		{name: "unknown top-level table", toml: "[worker.oci]\nenabled = true\n", err: "/conf/strata.toml:1: unknown key worker.oci"},
		{name: "unknown keypair key", toml: "[[registry.\"x.io\".keypair]]\nkey = \"k\"\ncert = \"c\"\npassphrase = \"p\"\n", err: ":4: unknown key registry.x.io.keypair.passphrase"},
		{name: "wrong type", toml: "[registry.\"x.io\"]\nhttp = \"yes\"\n", err: "/conf/strata.toml:2:"},
		{name: "syntax", toml: "[registry.\"x.io\"\n", err: "/conf/strata.toml:1:"},
		{name: "keypair without cert", toml: "[[registry.\"x.io\".keypair]]\nkey = \"k\"\n", err: "keypair needs both key and cert"},
		{name: "bad host", toml: "[registry.\"a b\"]\nhttp = true\n", err: `invalid registry host "a b"`},
		{name: "bad mirror", toml: "[registry.\"x.io\"]\nmirrors = [\"\"]\n", err: "mirror: empty registry host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig("/conf/strata.toml", []byte(tt.toml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.Registries); diff != "" {
				t.Errorf("registries (-want +got):\n%s", diff)
			}
			if cfg.Path != "/conf/strata.toml" {
				t.Errorf("Path = %q", cfg.Path)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.toml")

	// Named explicitly: an error.
	if _, err := LoadConfig(missing); err == nil {
		t.Error("LoadConfig of a missing explicit file succeeded")
	}
	// Named by STRATA_CONFIG: explicit too.
	t.Setenv(ConfigEnv, missing)
	if _, err := LoadConfig(""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadConfig with %s of a missing file: %v", ConfigEnv, err)
	}
	// The built-in default path: an empty configuration when missing.
	t.Setenv(ConfigEnv, "")
	if _, err := os.Stat(DefaultConfigPath()); err == nil {
		t.Skipf("%s exists on this machine", DefaultConfigPath())
	}
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Registries) != 0 {
		t.Errorf("registries = %v", cfg.Registries)
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "strata.toml")
	if err := os.WriteFile(p, []byte("[registry.\"x.io\"]\nca = [\"ca.pem\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ConfigEnv, p)
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Registries["x.io"].CA; len(got) != 1 || got[0] != filepath.Join(dir, "ca.pem") {
		t.Errorf("CA = %q", got)
	}
}

func TestDefaultConfigPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		euid int
		env  map[string]string
		want string
	}{
		{0, nil, "/etc/strata/strata.toml"},
		{0, map[string]string{ConfigEnv: "/x/s.toml"}, "/x/s.toml"},
		{1000, map[string]string{"HOME": "/home/u"}, "/home/u/.config/strata/strata.toml"},
		{1000, map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg"}, "/xdg/strata/strata.toml"},
		{1000, map[string]string{"HOME": "/home/u", ConfigEnv: "/x/s.toml"}, "/x/s.toml"},
	}
	for _, tt := range tests {
		if got := defaultConfigPath(tt.euid, env(tt.env)); got != tt.want {
			t.Errorf("defaultConfigPath(%d, %v) = %q, want %q", tt.euid, tt.env, got, tt.want)
		}
	}
}
