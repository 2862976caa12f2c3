package hosts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/registry/registrytest"
)

// The tests in this file run the real distribution registry (Debian's
// docker-registry); they skip where it is not installed.

// pushAndHead writes a random image to repoTag on host through r, reads
// it back and returns the first error, passed through CheckAuth.
func pushAndHead(t *testing.T, r *hosts.Resolver, host, repoTag string) error {
	t.Helper()
	ep, err := r.PushEndpoint(host)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(512, 2)
	if err := remote.Write(ref, img, ep.RemoteOptions()...); err != nil {
		return hosts.CheckAuth(host, err)
	}
	eps, err := r.PullEndpoints(host)
	if err != nil {
		return err
	}
	got, err := remote.Image(ref, eps[len(eps)-1].RemoteOptions()...)
	if err != nil {
		return hosts.CheckAuth(host, err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, pushed %s", d, want)
	}
	layers, err := got.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		if err := readLayer(l); err != nil {
			return hosts.CheckAuth(host, err)
		}
	}
	return nil
}

func readLayer(l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = rc.Read(make([]byte, 64))
	return err
}

func TestDistributionPlainHTTP(t *testing.T) {
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{})
	r := hosts.NewResolver(noInsecure())
	if err := pushAndHead(t, r, d.Host, "plain/app:1"); err != nil {
		t.Fatal(err)
	}
	ep, _ := r.PushEndpoint(d.Host)
	if !ep.PlainHTTP {
		t.Error("loopback registry not plain HTTP")
	}
}

func TestDistributionTLSLogin(t *testing.T) {
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	ctx := context.Background()
	dockerDir := t.TempDir()
	opts := func(certsDirs ...string) hosts.Options {
		return hosts.Options{Insecure: []string{}, CertsDirs: certsDirs, Keychain: hosts.Keychain(dockerDir)}
	}

	// Without the CA the registry's certificate is not trusted.
	err := hosts.Login(ctx, hosts.NewResolver(opts()), d.Host, "alice", "s3cret", dockerDir)
	if err == nil || errors.Is(err, hosts.ErrAuth) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("login without the CA: %v", err)
	}

	r := hosts.NewResolver(opts(d.CertsDir(t, false)))
	err = hosts.Login(ctx, r, d.Host, "alice", "wrong", dockerDir)
	if !errors.Is(err, hosts.ErrAuth) || !strings.HasPrefix(err.Error(), "authentication failed for "+d.Host+": ") {
		t.Fatalf("login with a bad password: %v", err)
	}
	t.Logf("bad password: %v", err)
	if err := pushAndHead(t, r, d.Host, "tls/app:1"); !errors.Is(err, hosts.ErrAuth) {
		t.Fatalf("anonymous push: %v", err)
	}

	if err := hosts.Login(ctx, r, d.Host, "alice", "s3cret", dockerDir); err != nil {
		t.Fatal(err)
	}
	auths := readDockerConfig(t, dockerDir)["auths"].(map[string]any)
	if auths[d.Host].(map[string]any)["auth"] != basicAuth("alice", "s3cret") {
		t.Errorf("config.json auths: %v", auths)
	}
	if err := pushAndHead(t, r, d.Host, "tls/app:1"); err != nil {
		t.Fatalf("push after login: %v", err)
	}

	if removed, err := hosts.Logout(d.Host, dockerDir); err != nil || !removed {
		t.Fatalf("logout: %v %v", removed, err)
	}
	err = pushAndHead(t, r, d.Host, "tls/app:2")
	if !errors.Is(err, hosts.ErrAuth) || !strings.Contains(err.Error(), "authentication failed for "+d.Host) {
		t.Fatalf("push after logout: %v", err)
	}
}

func TestDistributionTLSCredentialHelper(t *testing.T) {
	store := fakeHelper(t)
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	dockerDir := writeDockerConfig(t, map[string]any{"credHelpers": map[string]string{d.Host: "test"}})
	r := hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{d.CertsDir(t, false)}, Keychain: hosts.Keychain(dockerDir)})
	if err := hosts.Login(context.Background(), r, d.Host, "alice", "s3cret", dockerDir); err != nil {
		t.Fatal(err)
	}
	if got := helperStore(t, store)[d.Host]; got != (storedCredential{"alice", "s3cret"}) {
		t.Errorf("helper holds %+v", got)
	}
	if err := pushAndHead(t, r, d.Host, "helper/app:1"); err != nil {
		t.Fatalf("push with the helper's credentials: %v", err)
	}
	if removed, err := hosts.Logout(d.Host, dockerDir); err != nil || !removed {
		t.Fatalf("logout: %v %v", removed, err)
	}
	if got := helperStore(t, store); len(got) != 0 {
		t.Errorf("helper still holds %v", got)
	}
}

// TestDistributionTLSWithoutVerification: insecure = true in the config,
// or WithInsecure, reach a registry whose CA is unknown.
func TestDistributionTLSWithoutVerification(t *testing.T) {
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{TLS: true})
	cfg := &hosts.Config{Registries: map[string]hosts.Registry{d.Host: {Insecure: boolPtr(true), PlainHTTP: boolPtr(false)}}}
	opts := noInsecure()
	opts.Config = cfg
	if err := pushAndHead(t, hosts.NewResolver(opts), d.Host, "skip/app:1"); err != nil {
		t.Fatalf("insecure = true: %v", err)
	}
	if err := pushAndHead(t, hosts.NewResolver(noInsecure()).WithInsecure(d.Host), d.Host, "skip/app:2"); err != nil {
		t.Fatalf("WithInsecure: %v", err)
	}
	if err := pushAndHead(t, hosts.NewResolver(noInsecure()), d.Host, "skip/app:3"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verified: %v", err)
	}
}

func TestDistributionClientCertificates(t *testing.T) {
	d := registrytest.StartDistribution(t, registrytest.DistributionOptions{ClientCerts: true})

	// certs.d with ca.crt, client.cert and client.key.
	r := hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{t.TempDir(), d.CertsDir(t, true)}, Keychain: hosts.Keychain(t.TempDir())})
	if err := pushAndHead(t, r, d.Host, "mtls/app:1"); err != nil {
		t.Fatalf("with the client certificate from certs.d: %v", err)
	}

	// The CA alone: the registry refuses the handshake.
	r = hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{d.CertsDir(t, false)}, Keychain: hosts.Keychain(t.TempDir())})
	err := pushAndHead(t, r, d.Host, "mtls/app:2")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: %v", err)
	}
	t.Logf("without a client certificate: %v", err)

	// ca and keypair from the configuration file, relative to it.
	confDir := t.TempDir()
	for from, to := range map[string]string{d.CA: "ca.pem", d.ClientCert: "c.cert", d.ClientKey: "c.key"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(confDir, to), b, 0o600)
	}
	conf := filepath.Join(confDir, "strata.toml")
	toml := `[registry."` + d.Host + `"]
  ca = ["ca.pem"]
  [[registry."` + d.Host + `".keypair]]
    key = "c.key"
    cert = "c.cert"
`
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := hosts.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	r = hosts.NewResolver(hosts.Options{Config: cfg, Insecure: []string{}, CertsDirs: []string{}, Keychain: hosts.Keychain(t.TempDir())})
	if err := pushAndHead(t, r, d.Host, "mtls/app:3"); err != nil {
		t.Fatalf("with ca and keypair from %s: %v", conf, err)
	}

	// A client certificate without its key is a configuration error.
	bad := d.CertsDir(t, true)
	os.Remove(filepath.Join(bad, d.Host, "client.key"))
	r = hosts.NewResolver(hosts.Options{Insecure: []string{}, CertsDirs: []string{bad}})
	if _, err := r.PushEndpoint(d.Host); err == nil || !strings.Contains(err.Error(), "has no key client.key") {
		t.Errorf("client.cert without client.key: %v", err)
	}
}
