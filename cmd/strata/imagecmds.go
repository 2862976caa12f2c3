package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/store"
)

// withStore opens the store for one command; an error closing it is the
// command's error when the command itself succeeded.
func withStore(c *cobra.Command, g *globals, fn func(*store.Store) error) (err error) {
	st, err := g.open(c.Context())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(st)
}

func newTag(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "tag SOURCE TARGET",
		Short:             "Give a stored image another name",
		Args:              exactArgs(2),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := images.Normalize(args[1]); err != nil {
				return usagef("tag %s: %v", args[1], err)
			}
			return withStore(c, g, func(st *store.Store) error {
				return st.Tag(c.Context(), args[0], args[1])
			})
		},
	}
}

func newRmi(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "rmi IMAGE...",
		Short:             "Remove image names from the store (prune reclaims the space)",
		Args:              minArgs(1),
		ValidArgsFunction: completeImages(g, 0),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				for _, a := range args {
					if err := st.Untag(c.Context(), a); err != nil {
						return fmt.Errorf("rmi %w", err)
					}
					fmt.Fprintf(c.OutOrStdout(), "Untagged: %s\n", a)
				}
				return nil
			})
		},
	}
}
