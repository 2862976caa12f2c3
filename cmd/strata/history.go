package main

import (
	"cmp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/store"
)

// historyRow is one step of an image's history as `docker history` shows
// it and --format sees it.
type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

// The default columns of `strata history`, as docker's.
const historyTable = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"

// historyHeaders are the column names of historyRow's fields.
var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

type historyFlags struct {
	format, platform      string
	human, noTrunc, quiet bool
}

// historyRows are the rows of hist (oldest first, as the config has it),
// newest first; the newest is the image id, the others <missing> as
// docker shows the steps of an image it did not build.
func historyRows(hist []store.HistoryEntry, id string, f historyFlags, now time.Time) []historyRow {
	rows := make([]historyRow, 0, len(hist))
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		r := historyRow{ID: "<missing>", Comment: h.Comment, Size: strconv.FormatInt(h.Size, 10)}
		if i == len(hist)-1 && id != "" {
			r.ID = id
			if !f.noTrunc {
				r.ID = strings.TrimPrefix(id, "sha256:")[:12]
			}
		}
		if h.Created != nil {
			r.CreatedAt = h.Created.Local().Format(time.RFC3339)
			r.CreatedSince = r.CreatedAt
			if f.human {
				r.CreatedSince = since(*h.Created, now)
			}
		}
		if f.human {
			r.Size = humanSize(h.Size)
		}
		r.CreatedBy = strings.ReplaceAll(h.CreatedBy, "\t", " ")
		if !f.noTrunc {
			r.CreatedBy = ellipsis(strings.ReplaceAll(r.CreatedBy, "\n", " "), 45)
		}
		rows = append(rows, r)
	}
	return rows
}

// ellipsis cuts s to n characters, the last an ellipsis, as docker does.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func newHistory(g *globals) *cobra.Command {
	var f historyFlags
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Example: `  strata history app:1
  strata history --no-trunc app:1
  strata history --format '{{.CreatedBy}}' app:1
  strata history -H=false --format 'table {{.Size}}\t{{.CreatedBy}}' app:1`,
		Long: `Show the steps that made an image, newest first, as docker history does:
IMAGE (the image ID on the newest step), CREATED, CREATED BY, SIZE (of
the layer the step made, as stored) and COMMENT.

IMAGE is a name or an image ID (or a prefix of one). --format takes a Go
template over the fields .ID, .CreatedSince, .CreatedAt, .CreatedBy, .Size
and .Comment, with docker's functions; "table TEMPLATE" adds a header and
aligns the columns, "json" prints each step as JSON.`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := pullPlatform(f.platform)
			if err != nil {
				return err
			}
			fm, err := parseFormat(cmp.Or(f.format, historyTable), historyTable, historyHeaders)
			if err != nil {
				return err
			}
			return withStore(c, g, func(st *store.Store) error {
				var list []store.Summary
				img, err := lookupImage(c.Context(), st, &list, p, args[0])
				if err != nil {
					return err
				}
				res, err := st.Resolve(c.Context(), img.Name, p)
				if err != nil {
					return err
				}
				hist, err := st.History(c.Context(), img.Name, p)
				if err != nil {
					return err
				}
				rows := historyRows(hist, res.Manifest.Config.Digest.String(), f, time.Now())
				if f.quiet {
					for _, r := range rows {
						if _, err := c.OutOrStdout().Write([]byte(r.ID + "\n")); err != nil {
							return err
						}
					}
					return nil
				}
				anys := make([]any, len(rows))
				for i, r := range rows {
					anys[i] = r
				}
				return fm.write(c.OutOrStdout(), anys)
			})
		},
	}
	c.Flags().StringVar(&f.format, "format", "", `format the output with a Go template ("table TEMPLATE" for columns, "json" for JSON lines)`)
	c.Flags().BoolVarP(&f.human, "human", "H", true, "print sizes and dates in human-readable form")
	c.Flags().BoolVar(&f.noTrunc, "no-trunc", false, "do not truncate the output")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only the image IDs")
	c.Flags().StringVar(&f.platform, "platform", "", "show this platform of a multi-platform image (os/arch[/variant]; default: this machine's)")
	return c
}
