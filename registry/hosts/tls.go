package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// tlsConfig is the TLS client configuration of a canonical host: the
// system's CAs plus those of its certs.d directories and configuration,
// and its client certificates.
func (r *Resolver) tlsConfig(host string, cfg Registry, skipVerify bool) (*tls.Config, error) {
	var m tlsMaterial
	for _, root := range r.certsDirs {
		for _, n := range certsDirNames(host) {
			if err := m.loadDir(filepath.Join(root, n), true); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range cfg.TLSConfigDir {
		if err := m.loadDir(d, false); err != nil {
			return nil, err
		}
	}
	for _, f := range cfg.CA {
		if err := m.addCA(f); err != nil {
			return nil, err
		}
	}
	for _, kp := range cfg.KeyPairs {
		if err := m.addKeyPair(kp.Cert, kp.Key); err != nil {
			return nil, err
		}
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: skipVerify, // asked for: insecure = true or registry.insecure
		Certificates:       m.certs,
	}
	if m.roots != nil {
		tc.RootCAs = m.roots
	}
	return tc, nil
}

// certsDirNames are the certs.d directory names of a canonical host.
func certsDirNames(host string) []string {
	if host == dockerHub {
		return []string{dockerHub, "index.docker.io", "registry-1.docker.io"}
	}
	return []string{host}
}

// tlsMaterial gathers CAs and client certificates.
type tlsMaterial struct {
	roots *x509.CertPool
	certs []tls.Certificate
}

// loadDir adds a certs.d host directory: each *.crt is a CA, each *.cert
// a client certificate whose key is the *.key of the same name. A missing
// directory adds nothing when optional, and is an error otherwise.
func (m *tlsMaterial) loadDir(dir string, optional bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) && optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry certificates: %w", err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		p := filepath.Join(dir, n)
		switch {
		case strings.HasSuffix(n, ".crt"):
			if err := m.addCA(p); err != nil {
				return err
			}
		case strings.HasSuffix(n, ".cert"):
			key := strings.TrimSuffix(n, ".cert") + ".key"
			if !names[key] {
				return fmt.Errorf("registry certificates: client certificate %s has no key %s", p, key)
			}
			if err := m.addKeyPair(p, filepath.Join(dir, key)); err != nil {
				return err
			}
		case strings.HasSuffix(n, ".key"):
			if cert := strings.TrimSuffix(n, ".key") + ".cert"; !names[cert] {
				return fmt.Errorf("registry certificates: key %s has no client certificate %s", p, cert)
			}
		}
	}
	return nil
}

// addCA trusts the PEM certificates of file besides the system's.
func (m *tlsMaterial) addCA(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("registry CA: %w", err)
	}
	if m.roots == nil {
		if m.roots, err = x509.SystemCertPool(); err != nil {
			m.roots = x509.NewCertPool()
		}
	}
	if !m.roots.AppendCertsFromPEM(data) {
		return fmt.Errorf("registry CA %s: no PEM certificate", file)
	}
	return nil
}

// addKeyPair adds a client certificate.
func (m *tlsMaterial) addKeyPair(cert, key string) error {
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("registry client certificate %s: %w", cert, err)
	}
	m.certs = append(m.certs, c)
	return nil
}
