package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/store"
)

func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s needs exactly %d argument(s), got %d\nUsage: %s", c.Name(), n, len(args), c.UseLine())
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("%s needs %d to %d argument(s), got %d\nUsage: %s", c.Name(), lo, hi, len(args), c.UseLine())
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s needs at least %d argument(s)\nUsage: %s", c.Name(), n, c.UseLine())
		}
		return nil
	}
}

func readAllStdin(c *cobra.Command) ([]byte, error) {
	return io.ReadAll(c.InOrStdin())
}

func newImages(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images in the store",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				list, err := st.Images(c.Context(), defaultPlatform())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "REPOSITORY:TAG\tDIGEST\tCREATED\tSIZE")
				for _, img := range list {
					size := "-"
					if img.Size >= 0 {
						size = humanSize(img.Size)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", images.Familiar(img.Name), img.Target.Digest.Encoded()[:12], img.Created.Format(time.RFC3339), size)
				}
				return tw.Flush()
			})
		},
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func newLoad(g *globals) *cobra.Command {
	var input string
	c := &cobra.Command{
		Use:   "load [-i] FILE|-",
		Short: "Load images from a docker or OCI archive (plain or gzip)",
		Args: func(c *cobra.Command, args []string) error {
			if input != "" {
				return exactArgs(0)(c, args)
			}
			return exactArgs(1)(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if input != "" {
				args = []string{input}
			}
			return withInput(c, g, args[0], func(st *store.Store, r io.Reader) error {
				return loadArchive(c, st, r, args[0])
			})
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "read from this archive file instead of the argument")
	return c
}

func loadArchive(c *cobra.Command, st *store.Store, r io.Reader, name string) error {
	imgs, err := st.Load(c.Context(), r)
	if err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	for _, img := range imgs {
		if img.Name == "" {
			fmt.Fprintf(c.OutOrStdout(), "Loaded image ID: %s\n", img.Target.Digest)
		} else {
			fmt.Fprintf(c.OutOrStdout(), "Loaded image: %s\n", images.Familiar(img.Name))
		}
	}
	return nil
}

func newImport(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import ROOTFS.tar|- NAME",
		Short: "Make a one-layer image from a filesystem tarball",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := images.Normalize(args[1]); err != nil {
				return usagef("import %s: %v", args[1], err)
			}
			return withInput(c, g, args[0], func(st *store.Store, r io.Reader) error {
				img, err := st.Import(c.Context(), r, store.ImportOptions{Name: args[1]})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s\n", images.Familiar(img.Name), img.Target.Digest)
				return nil
			})
		},
	}
}

func newSave(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "save [-o FILE] IMAGE...",
		Short: "Write images to a docker archive (stdout by default)",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				if out == "" || out == "-" {
					return st.Save(c.Context(), args, c.OutOrStdout())
				}
				return st.SaveFile(c.Context(), args, out)
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write to this file")
	return c
}

// withInput opens path ("-" is stdin) and the store, and calls fn with both.
func withInput(c *cobra.Command, g *globals, path string, fn func(*store.Store, io.Reader) error) error {
	var r io.Reader = c.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return withStore(c, g, func(st *store.Store) error { return fn(st, r) })
}
