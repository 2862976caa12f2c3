package registrytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DistributionBinary is where Debian's docker-registry package installs
// the distribution registry.
const DistributionBinary = "/usr/bin/docker-registry"

// DistributionOptions configures a registry started by StartDistribution.
type DistributionOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1, ::1 and localhost,
	// signed by a CA made for the test.
	TLS bool
	// ClientCerts requires client certificates signed by that CA
	// (http.tls.clientcas); it implies TLS.
	ClientCerts bool
	// Users maps user names to passwords for htpasswd (Basic) auth; empty
	// means no auth.
	Users map[string]string
}

// Distribution is a real distribution registry (the docker-registry
// program) serving on 127.0.0.1 until the test ends, with its data in a
// temporary directory.
type Distribution struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Dir holds the registry's configuration, data, log and certificates.
	Dir string
	// CA is the PEM file of the CA that signed the server and client
	// certificates (TLS only).
	CA string
	// ClientCert and ClientKey are a client certificate signed by CA and
	// its key (TLS only).
	ClientCert, ClientKey string
	// Log is the registry's output.
	Log string

	opts DistributionOptions
	cmd  *exec.Cmd
}

// StartDistribution writes a config.yml, runs `docker-registry serve` on a
// free port of 127.0.0.1, waits until /v2/ answers and stops the registry
// when the test ends (its log is shown if the test failed). It skips the
// test when docker-registry is not installed.
func StartDistribution(t testing.TB, opts DistributionOptions) *Distribution {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if _, serr := os.Stat(DistributionBinary); serr != nil {
			t.Skipf("the distribution registry is not installed (apt-get install docker-registry): %v", err)
		}
		bin = DistributionBinary
	}
	if opts.ClientCerts {
		opts.TLS = true
	}
	d := &Distribution{Dir: t.TempDir(), opts: opts}
	d.Log = filepath.Join(d.Dir, "registry.log")
	if opts.TLS {
		d.makeCerts(t)
	}
	if len(opts.Users) > 0 {
		d.writeHtpasswd(t)
	}
	// A port found free may be taken before the registry binds it: try
	// again with another.
	for try := 0; ; try++ {
		err := d.start(t, bin)
		if err == nil {
			return d
		}
		if try == 2 {
			t.Fatalf("start docker-registry: %v\n%s", err, d.logTail())
		}
	}
}

// start runs the registry on a fresh port and waits for it.
func (d *Distribution) start(t testing.TB, bin string) error {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return err
	}
	d.Host = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(d.Dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(d.config()), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", cfg)
	// REGISTRY_* variables would override the configuration.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + d.Dir}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	client := d.client(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("docker-registry exited: %v", err)
		default:
		}
		resp, err := client.Get(d.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("docker-registry on %s did not answer /v2/ within 15s (last: %v)", d.Host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.cmd = cmd
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", d.logTail())
		}
	})
	return nil
}

// URL is the registry's base URL ("http://127.0.0.1:PORT" or https).
func (d *Distribution) URL() string {
	if d.opts.TLS {
		return "https://" + d.Host
	}
	return "http://" + d.Host
}

// Ref is the reference of repoTag ("app:1") in this registry.
func (d *Distribution) Ref(repoTag string) string { return d.Host + "/" + repoTag }

// CertsDir writes a certs.d root for this registry, as docker reads
// /etc/docker/certs.d: ROOT/HOST:PORT/ca.crt and, with client, the client
// certificate as client.cert and client.key. It returns ROOT.
func (d *Distribution) CertsDir(t testing.TB, client bool) string {
	t.Helper()
	if !d.opts.TLS {
		t.Fatal("CertsDir: the registry does not serve TLS")
	}
	root := t.TempDir()
	dir := filepath.Join(root, d.Host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, d.CA, filepath.Join(dir, "ca.crt"))
	if client {
		copyFile(t, d.ClientCert, filepath.Join(dir, "client.cert"))
		copyFile(t, d.ClientKey, filepath.Join(dir, "client.key"))
	}
	return root
}

// client reaches the registry with the test CA and client certificate.
func (d *Distribution) client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if d.opts.TLS {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(d.CA)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(ca)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		if d.opts.ClientCerts {
			pair, err := tls.LoadX509KeyPair(d.ClientCert, d.ClientKey)
			if err != nil {
				t.Fatal(err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
		}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}
}

// config is the registry's config.yml.
func (d *Distribution) config() string {
	secret := make([]byte, 16)
	rand.Read(secret)
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
`, filepath.Join(d.Dir, "data"), d.Host, hex.EncodeToString(secret))
	if d.opts.TLS {
		fmt.Fprintf(&b, "  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(d.Dir, "server.crt"), filepath.Join(d.Dir, "server.key"))
		if d.opts.ClientCerts {
			fmt.Fprintf(&b, "    clientcas:\n      - %s\n", d.CA)
		}
	}
	if len(d.opts.Users) > 0 {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", filepath.Join(d.Dir, "htpasswd"))
	}
	return b.String()
}

// writeHtpasswd writes the users' bcrypt hashes, the only kind the
// registry accepts.
func (d *Distribution) writeHtpasswd(t testing.TB) {
	t.Helper()
	users := make([]string, 0, len(d.opts.Users))
	for u := range d.opts.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	var b bytes.Buffer
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(d.opts.Users[u]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "htpasswd"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// makeCerts makes a CA, a server certificate for the loopback names and a
// client certificate, all in Dir.
func (d *Distribution) makeCerts(t testing.TB) {
	t.Helper()
	ca := NewCA(t, "registrytest CA")
	d.CA = filepath.Join(d.Dir, "ca.pem")
	writePEM(t, d.CA, "CERTIFICATE", ca.Cert.Raw)
	srv := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	srv.Write(t, filepath.Join(d.Dir, "server.crt"), filepath.Join(d.Dir, "server.key"))
	cl := ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "registrytest client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	d.ClientCert, d.ClientKey = filepath.Join(d.Dir, "client.cert"), filepath.Join(d.Dir, "client.key")
	cl.Write(t, d.ClientCert, d.ClientKey)
}

func (d *Distribution) logTail() string {
	b, _ := os.ReadFile(d.Log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// CA is a certificate authority made for a test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA valid for a day.
func NewCA(t testing.TB, commonName string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// Issued is a certificate a CA signed, with its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issue signs tmpl (names and key usages; serial, validity and key are
// filled in) with a new key.
func (ca *CA) Issue(t testing.TB, tmpl *x509.Certificate) *Issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Issued{Cert: cert, Key: key}
}

// Write stores the certificate and its key as PEM files.
func (c *Issued) Write(t testing.TB, certFile, keyFile string) {
	t.Helper()
	writePEM(t, certFile, "CERTIFICATE", c.Cert.Raw)
	der, err := x509.MarshalECPrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", der)
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort is a TCP port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}
