package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
)

func newExport(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [-o FILE] IMAGE",
		Short: "Write an image's filesystem as one tar (stdout by default)",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *builder.Store) error {
				img, err := st.Images.Get(c.Context(), args[0])
				if err != nil {
					return fmt.Errorf("export %s: %w", args[0], err)
				}
				e := exporter.RootfsTar{Path: out}
				if out == "" || out == "-" {
					e = exporter.RootfsTar{W: c.OutOrStdout()}
				}
				_, err = e.Export(c.Context(), exporter.Source{Content: st.Content, Manifest: img.Target})
				return err
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to this file")
	return c
}
