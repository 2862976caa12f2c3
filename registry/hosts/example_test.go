package hosts_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/strata/registry/hosts"
)

// Example shows how pull and push reach a registry: one Resolver per
// process, endpoints per image, go-containerregistry options per endpoint,
// errors through CheckAuth. (It needs a network, so it is compiled, not
// run.)
func Example() {
	ctx := context.Background()
	cfg, err := hosts.LoadConfig("") // the --config flag's value, if given
	if err != nil {
		log.Fatal(err)
	}
	r := hosts.NewResolver(hosts.Options{Config: cfg})

	// Pull: the mirrors, then the host; the next endpoint after a failure.
	ref, _ := name.ParseReference("busybox:latest")
	host := ref.Context().RegistryStr()
	eps, err := r.PullEndpoints(host)
	if err != nil {
		log.Fatal(err)
	}
	var desc *remote.Descriptor
	for _, ep := range eps {
		epRef, err := ep.Reference(ref) // 127.0.0.1:5001/library/busybox:latest on a mirror
		if err != nil {
			log.Fatal(err)
		}
		desc, err = remote.Get(epRef, append(ep.RemoteOptions(), remote.WithContext(ctx))...)
		if err == nil {
			break
		}
		err = hosts.CheckAuth(ep.Host, err)
		log.Printf("%s: %v", ep.Host, err)
	}
	if desc != nil {
		fmt.Println(desc.Digest)
	}

	// Push: the host alone. An output with registry.insecure=true pushes
	// through r.WithInsecure(host).
	dst, _ := name.ParseReference("127.0.0.1:5000/app:1")
	ep, err := r.WithInsecure(dst.Context().RegistryStr()).PushEndpoint(dst.Context().RegistryStr())
	if err != nil {
		log.Fatal(err)
	}
	img, _ := random.Image(1024, 1)
	err = remote.Write(dst, img, append(ep.RemoteOptions(), remote.WithContext(ctx))...)
	if err = hosts.CheckAuth(dst.Context().RegistryStr(), err); errors.Is(err, hosts.ErrAuth) {
		log.Fatal(err) // "authentication failed for 127.0.0.1:5000: ..."
	}
}

// ExampleLogin is what `strata login -u USER --password-stdin HOST` does.
func ExampleLogin() {
	r := hosts.NewResolver(hosts.Options{})
	err := hosts.Login(context.Background(), r, "ghcr.io", "user", "token", "")
	switch {
	case errors.Is(err, hosts.ErrAuth):
		log.Fatal(err) // exit 1: "authentication failed for ghcr.io: ..."
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("Login Succeeded")
}
