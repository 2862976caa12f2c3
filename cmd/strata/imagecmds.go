package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

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
		Use:   "tag SOURCE TARGET",
		Short: "Give a stored image another name",
		Args:  exactArgs(2),
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
		Use:   "rmi IMAGE...",
		Short: "Remove image names from the store (prune reclaims the space)",
		Args:  minArgs(1),
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

func newInspect(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest digest and config as JSON",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				res, err := st.Resolve(c.Context(), args[0], defaultPlatform())
				if err != nil {
					return err
				}
				var cfg map[string]any
				if err := json.Unmarshal(res.ConfigBytes, &cfg); err != nil {
					return err
				}
				out := map[string]any{
					"Name":     images.Familiar(res.Name),
					"Digest":   res.ManifestDesc.Digest,
					"ConfigID": res.Manifest.Config.Digest,
					"Config":   cfg,
				}
				b, err := json.MarshalIndent(out, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.OutOrStdout(), string(b))
				return err
			})
		},
	}
}

func newHistory(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				hist, err := st.History(c.Context(), args[0], defaultPlatform())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "CREATED\tCREATED BY\tSIZE\tCOMMENT")
				for i := len(hist) - 1; i >= 0; i-- {
					h := hist[i]
					created := ""
					if h.Created != nil {
						created = h.Created.Format(time.RFC3339)
					}
					by := strings.ReplaceAll(h.CreatedBy, "\n", " ")
					if len(by) > 60 {
						by = by[:57] + "..."
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", created, by, humanSize(h.Size), h.Comment)
				}
				return tw.Flush()
			})
		},
	}
}
