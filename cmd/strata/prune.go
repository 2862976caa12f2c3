package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/store"
)

func newDu(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "du",
		Short: "Show the disk usage of the build cache",
		Example: `  strata du
  strata --root /tmp/store du`,
		Args:              exactArgs(0),
		ValidArgsFunction: completeNoFiles,
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				list, err := st.DiskUsage(c.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tSIZE\tSHARED\tLAST USED")
				var total, shared int64
				for _, u := range list {
					fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.Key.Encoded()[:12], humanSize(u.Size), u.Shared, u.LastUsed.Local().Format(time.DateTime))
					total += u.Size
					if u.Shared {
						shared += u.Size
					}
				}
				fmt.Fprintf(tw, "Shared:\t%s\n", humanSize(shared))
				fmt.Fprintf(tw, "Private:\t%s\n", humanSize(total-shared))
				n, flat, err := st.FlatUsage(c.Context())
				if err != nil {
					return err
				}
				if n > 0 {
					// Chains deeper than an overlay stacks mount their older
					// layers from flattened copies.
					fmt.Fprintf(tw, "Flattened:\t%s\t(%d copies of the older layers of chains deeper than 500)\n", humanSize(flat), n)
					total += flat
				}
				fmt.Fprintf(tw, "Total:\t%s\n", humanSize(total))
				return tw.Flush()
			})
		},
	}
}

func newPrune(g *globals) *cobra.Command {
	var all bool
	var keep string
	var filters []string
	c := &cobra.Command{
		Use:   "prune [--all] [--keep-storage SIZE] [--filter until=DURATION]",
		Short: "Remove build cache (never what a tagged image or a running build uses)",
		Example: `  # cache unused for 48 hours, and what nothing references
  strata prune

  # all the build cache; cache unused for a day; down to 10GB
  strata prune --all
  strata prune --filter until=24h
  strata prune --keep-storage 10GB`,
		Args:              exactArgs(0),
		ValidArgsFunction: completeNoFiles,
		RunE: func(c *cobra.Command, args []string) error {
			opts := store.PruneOptions{All: all}
			if keep != "" {
				n, err := parseSize(keep)
				if err != nil {
					return usagef("--keep-storage: %v", err)
				}
				opts.KeepStorage = n
			}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "until" {
					return usagef("--filter %q: only until=DURATION is supported", f)
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					return usagef("--filter %q: %v", f, err)
				}
				opts.Until = d
			}
			return withStore(c, g, func(st *store.Store) error {
				rep, err := st.Prune(c.Context(), opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "Removed %d cache records, %d snapshots, %d blobs\nTotal reclaimed space: %s\n", rep.Records, rep.Snapshots, rep.Blobs, humanSize(rep.Reclaimed))
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all build cache")
	c.Flags().StringVar(&keep, "keep-storage", "", "keep at most this much cache (e.g. 10GB)")
	c.Flags().StringArrayVar(&filters, "filter", nil, "filter: until=DURATION (e.g. 24h)")
	c.Flags().BoolP("force", "f", true, "do not prompt (strata never prompts)")
	return c
}

// parseSize reads sizes like 512, 10MB, 1.5GiB, 2g.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := float64(1)
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(f * mult), nil
}
