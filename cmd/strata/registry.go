package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/store"
)

// registryOptions reads the registry configuration file (path "" is the
// default one, which may be missing) into how registries are reached.
func registryOptions(path string) (registry.Options, error) {
	cfg, err := hosts.LoadConfig(path)
	if err != nil {
		return registry.Options{}, err
	}
	return registry.Options{Hosts: hosts.NewResolver(hosts.Options{Config: cfg})}, nil
}

func newPush(g *globals) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Send a stored image to its registry",
		Example: `  strata push registry.example.com/team/app:1

  # a local image pushed under a registry's name
  strata tag app:1 127.0.0.1:5000/app:1
  strata push -q 127.0.0.1:5000/app:1`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := images.Normalize(args[0]); err != nil {
				return usagef("push: %v", err)
			}
			ro, err := g.registry()
			if err != nil {
				return err
			}
			r, err := commandProgress(c, quiet)
			if err != nil {
				return err
			}
			ro.Progress = r
			var res registry.PushResult
			err = withStore(c, g, func(st *store.Store) error {
				res, err = st.Push(c.Context(), args[0], ro)
				return err
			})
			_ = r.Close() // as in build: before the result or the error
			if err != nil {
				return err
			}
			printPush(c.OutOrStdout(), res, quiet)
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the pushed digest")
	return c
}

// printPush says what a push did, as docker push ends: the digest, and how
// many blobs went over the wire.
func printPush(w io.Writer, res registry.PushResult, quiet bool) {
	if quiet {
		fmt.Fprintln(w, res.Target.Digest)
		return
	}
	for _, r := range res.Refs {
		fmt.Fprintf(w, "pushed %s\n", r)
	}
	fmt.Fprintf(w, "digest: %s size: %d (%d blobs uploaded, %d bytes; %d already there; %d mounted)\n",
		res.Target.Digest, res.Target.Size, res.Uploaded, res.UploadedBytes, res.Skipped, res.Mounted)
}

func newLogin(g *globals) *cobra.Command {
	var user, password string
	var passwordStdin bool
	c := &cobra.Command{
		Use:   "login [-u USER] [-p PASSWORD | --password-stdin] [SERVER]",
		Short: "Log in to a registry (credentials go where docker login puts them)",
		Example: `  # asks for the user name and the password
  strata login registry.example.com

  # in CI
  echo "$REGISTRY_TOKEN" | strata login -u ci --password-stdin registry.example.com`,
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeNoFiles,
		RunE: func(c *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = args[0]
			}
			if password != "" && passwordStdin {
				return usagef("--password and --password-stdin are mutually exclusive")
			}
			if passwordStdin && user == "" {
				return usagef("--password-stdin needs --username")
			}
			in := bufio.NewReader(c.InOrStdin())
			if user == "" {
				fmt.Fprint(c.ErrOrStderr(), "Username: ")
				user = readLine(in)
			}
			if password == "" {
				if !passwordStdin {
					fmt.Fprint(c.ErrOrStderr(), "Password: ")
				}
				password = readLine(in)
			}
			if user == "" || password == "" {
				return usagef("login %s: a username and a password are needed", host)
			}
			ro, err := g.registry()
			if err != nil {
				return err
			}
			if err := hosts.Login(c.Context(), ro.Hosts, host, user, password, ""); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "user name")
	c.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return c
}

// readLine reads one line without its line ending.
func readLine(r *bufio.Reader) string {
	s, _ := r.ReadString('\n')
	return strings.TrimRight(s, "\r\n")
}

func newLogout(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Remove a registry's credentials",
		Example: `  strata logout registry.example.com
  strata logout`,
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeNoFiles,
		RunE: func(c *cobra.Command, args []string) error {
			host := "docker.io"
			if len(args) == 1 {
				host = args[0]
			}
			removed, err := hosts.Logout(host, "")
			if err != nil {
				return err
			}
			if removed {
				fmt.Fprintf(c.OutOrStdout(), "Removing login credentials for %s\n", host)
			} else {
				fmt.Fprintf(c.OutOrStdout(), "Not logged in to %s\n", host)
			}
			return nil
		},
	}
}
