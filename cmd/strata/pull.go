package main

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/store"
)

func newPull(g *globals) *cobra.Command {
	var platform string
	var quiet bool
	c := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry into the store",
		Example: `  strata pull busybox
  strata pull --platform linux/arm64 alpine:3.20
  strata pull 127.0.0.1:5000/base:1
  strata pull -q registry.example.com/team/app:1`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeImages(g, 1), // a stored name, to pull it again
		RunE: func(c *cobra.Command, args []string) error {
			p, err := pullPlatform(platform)
			if err != nil {
				return err
			}
			if _, err := images.Normalize(args[0]); err != nil {
				return usagef("pull: %v", err)
			}
			r, err := commandProgress(c, quiet)
			if err != nil {
				return err
			}
			var res registry.Result
			err = withStore(c, g, func(st *store.Store) error {
				ro, err := g.registry()
				if err != nil {
					return err
				}
				ro.Progress = r
				res, err = st.Pull(c.Context(), args[0], store.PullOptions{Platform: p, Registry: ro})
				return err
			})
			_ = r.Close() // as in build: before the result or the error
			if err != nil {
				return err
			}
			printPull(c, res, quiet)
			return nil
		},
	}
	c.Flags().StringVar(&platform, "platform", "", "pull this platform of a multi-platform image (os/arch[/variant]; default: this machine's)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image name")
	return c
}

// printPull writes what docker pull writes once a pull is done.
func printPull(c *cobra.Command, res registry.Result, quiet bool) {
	out := c.OutOrStdout()
	if !quiet {
		short := images.Familiar(res.Image.Name)
		fmt.Fprintf(out, "%s: %d blobs fetched (%d bytes), %d already present\n", short, res.Fetched, res.FetchedBytes, res.Present)
		fmt.Fprintf(out, "Digest: %s\n", res.Image.Target.Digest)
		if res.Updated {
			fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", short)
		} else {
			fmt.Fprintf(out, "Status: Image is up to date for %s\n", short)
		}
	}
	fmt.Fprintln(out, res.Image.Name)
}

// pullPlatform parses os/arch[/variant]; "" is this machine's platform.
func pullPlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return defaultPlatform(), nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, usagef("--platform %q: want os/arch or os/arch/variant", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
