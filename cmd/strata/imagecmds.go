package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
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
		Example: `  strata tag app:1 registry.example.com/team/app:1
  strata tag busybox busybox:stable
  strata tag $(strata images -q busybox:latest) busybox:pinned`,
		Long:              "Give a stored image another name. SOURCE is a name or an image ID (or a prefix of one).",
		Args:              exactArgs(2),
		ValidArgsFunction: completeImages(g, 1),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := images.Normalize(args[1]); err != nil {
				return usagef("tag %s: %v", args[1], err)
			}
			return withStore(c, g, func(st *store.Store) error {
				var list []store.Summary
				img, err := lookupImage(c.Context(), st, &list, defaultPlatform(), args[0])
				if err != nil {
					return err
				}
				return st.Tag(c.Context(), img.Name, args[1])
			})
		},
	}
}

func newRmi(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE...",
		Short: "Remove image names from the store (prune reclaims the space)",
		Example: `  strata rmi app:1 app:2

  # the images without a tag, by ID
  strata rmi $(strata images -q --filter dangling=true)

  # every name of one image
  strata rmi --force 9a7388d5a89d`,
		Long: `Remove image names from the store; the content stays until strata prune
finds nothing else uses it.

IMAGE is a name, or an image ID (or a prefix of one) as strata images -q
prints it: an ID removes the one name of that image, or with --force
every name of it.`,
		Args:              minArgs(1),
		ValidArgsFunction: completeImages(g, 0),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c, g, func(st *store.Store) error {
				var list []store.Summary
				for _, a := range args {
					names, err := untag(c.Context(), st, &list, a, force)
					for _, n := range names {
						fmt.Fprintf(c.OutOrStdout(), "Untagged: %s\n", images.Familiar(n))
					}
					if err != nil {
						return fmt.Errorf("rmi: %w", err)
					}
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove every name of an image given by ID")
	return c
}

// untag removes the name ref, or the names of the image ID ref (several
// only with force), and returns the names it removed. list is the
// store's images, read on the first lookup by ID.
func untag(ctx context.Context, st *store.Store, list *[]store.Summary, ref string, force bool) ([]string, error) {
	img, err := st.Image(ctx, ref)
	if err == nil {
		if err := st.Untag(ctx, img.Name); err != nil {
			return nil, err
		}
		*list = slices.DeleteFunc(*list, func(s store.Summary) bool { return s.Name == img.Name })
		return []string{img.Name}, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) && isName(ref) {
		return nil, err
	}
	if *list == nil {
		if *list, err = st.Images(ctx, defaultPlatform()); err != nil {
			return nil, err
		}
	}
	id, err := matchID(*list, ref)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range *list {
		if s.ID == id {
			names = append(names, s.Name)
		}
	}
	if len(names) > 1 && !force {
		fam := make([]string, len(names))
		for i, n := range names {
			fam[i] = images.Familiar(n)
		}
		return nil, fmt.Errorf("%s: image %s has %d names (%s): remove them by name, or all with --force", ref, id.Encoded()[:12], len(names), strings.Join(fam, ", "))
	}
	var done []string
	for _, n := range names {
		if err := st.Untag(ctx, n); err != nil {
			return done, err
		}
		done = append(done, n)
	}
	*list = slices.DeleteFunc(*list, func(s store.Summary) bool { return slices.Contains(done, s.Name) })
	return done, nil
}
