package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
	var f imagesFlags
	c := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List the images in the store",
		Example: `  strata images
  strata images busybox

  # glob over the names; IDs of the images without a tag
  strata images --filter reference='*/app:1.*'
  strata images -q --filter dangling=true

  # by label; by creation, relative to other images
  strata images --filter label=org.opencontainers.image.source
  strata images --filter since=busybox:1.36 --filter before=app:2

  # the manifest digests; other columns; JSON lines
  strata images --digests
  strata images --format 'table {{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.Size}}'
  strata images --format '{{.Repository}}:{{.Tag}}'
  strata images --format json`,
		Long: `List the images in the store, one line per name, as docker images does.

A REPOSITORY[:TAG] argument lists only the names it matches, like
--filter reference=REPOSITORY[:TAG].

Filters (--filter KEY=VALUE, repeatable: a name is listed when it matches
one of the reference filters, if any, and every other filter):
  dangling=true|false   only names without a tag (digest-only), or only tagged ones
  reference=PATTERN     names whose familiar form matches a glob
                        (busy*, */app:1.*), with or without the tag
  before=IMAGE          images created before IMAGE (a name or an image ID)
  since=IMAGE           images created after IMAGE
  label=KEY             images whose config has the label KEY
  label=KEY=VALUE       ... with that value

--format takes a Go template over the fields .Repository, .Tag, .ID,
.Digest, .CreatedAt, .CreatedSince and .Size, with docker's functions
({{json .}}, join, lower, upper, pad, truncate...); "table TEMPLATE" adds
a header and aligns the columns, "json" prints each image as JSON.`,
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			filters := f.filters
			if len(args) == 1 {
				filters = append(slices.Clip(filters), "reference="+args[0])
			}
			filt, err := parseImageFilters(filters)
			if err != nil {
				return err
			}
			fm, err := f.formatter()
			if err != nil {
				return err
			}
			return withStore(c, g, func(st *store.Store) error {
				list, err := st.Images(c.Context(), defaultPlatform())
				if err != nil {
					return err
				}
				if list, err = filt.apply(list); err != nil {
					return err
				}
				return printImages(c.OutOrStdout(), list, f, fm, time.Now())
			})
		},
	}
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only the image IDs")
	c.Flags().BoolVar(&f.digests, "digests", false, "show the manifest digests")
	c.Flags().StringVar(&f.format, "format", "", `format the output with a Go template ("table TEMPLATE" for columns, "json" for JSON lines)`)
	c.Flags().StringArrayVarP(&f.filters, "filter", "f", nil, "show only the images that match: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]")
	_ = c.RegisterFlagCompletionFunc("filter", completeImageFilter(g))
	return c
}

type imagesFlags struct {
	quiet, digests bool
	format         string
	filters        []string
}

// The default columns of `strata images`, as docker's.
const (
	imagesTable        = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	imagesDigestsTable = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)

// imageHeaders are the column names of imageRow's fields.
var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
	"CreatedAt": "CREATED AT", "CreatedSince": "CREATED", "Size": "SIZE",
}

// formatter parses --format, docker's columns without one.
func (f imagesFlags) formatter() (*formatter, error) {
	def := imagesTable
	if f.digests {
		def = imagesDigestsTable
	}
	return parseFormat(cmp.Or(f.format, def), def, imageHeaders)
}

// imageRow is one image as `docker images` shows it and --format sees it.
type imageRow struct {
	Repository, Tag, ID, Digest, CreatedAt, CreatedSince, Size string
}

func rowOf(img store.Summary, now time.Time) imageRow {
	repo, tag := splitRepoTag(images.Familiar(img.Name))
	r := imageRow{Repository: repo, Tag: tag, Digest: img.Target.Digest.String(), Size: "-", ID: "<missing>",
		CreatedAt: img.Created.Format("2006-01-02 15:04:05 -0700 MST"), CreatedSince: since(img.Created, now)}
	if img.ID != "" {
		r.ID = img.ID.Encoded()[:12]
	}
	if img.Size >= 0 {
		r.Size = humanSize(img.Size)
	}
	return r
}

// splitRepoTag splits a familiar name at its tag ("<none>" without one).
func splitRepoTag(n string) (string, string) {
	if repo, _, ok := strings.Cut(n, "@"); ok {
		return repo, "<none>"
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		return n[:i], n[i+1:]
	}
	return n, "<none>"
}

// since says how long ago t was, as docker does ("5 minutes ago").
func since(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 14*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d/(7*24*time.Hour)), "week") + " ago"
	case d < 2*365*24*time.Hour:
		return plural(int(d/(30*24*time.Hour)), "month") + " ago"
	}
	return plural(int(d/(365*24*time.Hour)), "year") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		if unit == "hour" {
			return "An hour"
		}
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// printImages writes the listing: -q's IDs (each once) or the rows
// through fm.
func printImages(w io.Writer, list []store.Summary, f imagesFlags, fm *formatter, now time.Time) error {
	if f.quiet {
		seen := map[string]bool{}
		for _, img := range list {
			id := rowOf(img, now).ID
			if !seen[id] {
				seen[id] = true
				fmt.Fprintln(w, id)
			}
		}
		return nil
	}
	rows := make([]any, len(list))
	for i, img := range list {
		rows[i] = rowOf(img, now)
	}
	return fm.write(w, rows)
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
		Example: `  strata load image.tar
  strata load -i image.oci.tar.gz
  strata load - < image.tar
  docker save busybox | strata load -`,
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
		Example: `  strata import rootfs.tar busybox
  tar -C rootfs -c . | strata import - mybase:1`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeFilesThenNone(1),
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
		Example: `  strata save -o app.tar app:1 app:2
  strata save busybox | gzip > busybox.tar.gz`,
		Args:              minArgs(1),
		ValidArgsFunction: completeImages(g, 0),
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
