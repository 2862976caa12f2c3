package registrytest

import (
	"net/http"
	"testing"
)

func TestStartDistribution(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts DistributionOptions
		want int
	}{
		{"plain", DistributionOptions{}, http.StatusOK},
		{"tls htpasswd", DistributionOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}}, http.StatusUnauthorized},
		{"client certs", DistributionOptions{ClientCerts: true}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := StartDistribution(t, tt.opts)
			resp, err := d.client(t).Get(d.URL() + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET /v2/: %s, want %d", resp.Status, tt.want)
			}
			if tt.opts.ClientCerts {
				// Without a client certificate the handshake fails.
				c := d.client(t)
				c.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
				if resp, err := c.Get(d.URL() + "/v2/"); err == nil {
					resp.Body.Close()
					t.Errorf("GET /v2/ without a client certificate: %s", resp.Status)
				}
			}
		})
	}
}
