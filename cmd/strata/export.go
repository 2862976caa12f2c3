package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/store"
)

func newExport(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [-o FILE] IMAGE",
		Short: "Write an image's filesystem as one tar (stdout by default)",
		Example: `  strata export -o rootfs.tar app:1
  strata export app:1 | tar -t`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			e := exporter.RootfsTar{Path: out}
			if out == "" || out == "-" {
				e = exporter.RootfsTar{W: c.OutOrStdout()}
			}
			return withStore(c, g, func(st *store.Store) error {
				if err := st.Export(c.Context(), args[0], e); err != nil {
					return fmt.Errorf("export %w", err)
				}
				return nil
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to this file")
	return c
}
