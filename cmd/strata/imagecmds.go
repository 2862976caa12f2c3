package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/images"
)

// withStore opens the store for one command.
func withStore(c *cobra.Command, g *globals, fn func(*builder.Store) error) error {
	st, err := g.open(c.Context())
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

func newTag(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give a stored image another name",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *builder.Store) error {
				img, err := st.Images.Get(c.Context(), args[0])
				if err != nil {
					return fmt.Errorf("tag %s: %w", args[0], err)
				}
				name, err := images.Normalize(args[1])
				if err != nil {
					return usagef("tag %s: %v", args[1], err)
				}
				img.Name, img.Updated = name, time.Now().UTC()
				return st.Images.Put(c.Context(), img)
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
			return withStore(c, g, func(st *builder.Store) error {
				for _, a := range args {
					if err := st.Images.Delete(c.Context(), a); err != nil {
						return fmt.Errorf("rmi %s: %w", a, err)
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
			return withStore(c, g, func(st *builder.Store) error {
				res, err := resolveStored(c, st, args[0])
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
			return withStore(c, g, func(st *builder.Store) error {
				res, err := resolveStored(c, st, args[0])
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "CREATED\tCREATED BY\tSIZE\tCOMMENT")
				// Layer-making entries take the manifest's layers in order.
				sizes := make([]string, len(res.Config.History))
				next := 0
				for i, h := range res.Config.History {
					sizes[i] = "0B"
					if !h.EmptyLayer && next < len(res.Manifest.Layers) {
						sizes[i] = humanSize(res.Manifest.Layers[next].Size)
						next++
					}
				}
				for i := len(res.Config.History) - 1; i >= 0; i-- {
					h := res.Config.History[i]
					created := ""
					if h.Created != nil {
						created = h.Created.Format(time.RFC3339)
					}
					by := strings.ReplaceAll(h.CreatedBy, "\n", " ")
					if len(by) > 60 {
						by = by[:57] + "..."
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", created, by, sizes[i], h.Comment)
				}
				return tw.Flush()
			})
		},
	}
}

func resolveStored(c *cobra.Command, st *builder.Store, name string) (*images.Resolved, error) {
	img, err := st.Images.Get(c.Context(), name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res, err := images.Resolve(c.Context(), st.Content, img.Target, defaultPlatform())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Name = img.Name
	return res, nil
}
