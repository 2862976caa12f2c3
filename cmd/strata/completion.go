package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/spf13/cobra"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/store"
)

func newCompletion() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `Print the script that makes a shell complete strata's commands and
flags, the names of stored images for the commands that take one (from
the store of --root or STRATA_ROOT), and the stages of the Dockerfile for
build --target.

bash needs the bash-completion package.`,
		Example: `  # the completions in the current shell
  source <(strata completion bash)
  source <(strata completion zsh)
  strata completion fish | source

  # in every new shell: the script where the shell looks for it
  strata completion bash > /etc/bash_completion.d/strata
  strata completion zsh > "${fpath[1]}/_strata"
  strata completion fish > ~/.config/fish/completions/strata.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		Args:                  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			out, root := c.OutOrStdout(), c.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return usagef("completion: unknown shell %q (bash, zsh, fish)", args[0])
		},
	}
}

// completeImages completes the names of the stored images (familiar, as
// `strata images` shows them) for the first n arguments (all with n 0),
// each name once on a command line.
func completeImages(g *globals, n int) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n > 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, err := store.Names(c.Context(), g.rootDir())
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, name := range names {
			fam := images.Familiar(name)
			cand := fam
			if !strings.HasPrefix(fam, toComplete) {
				cand = name // typed in full, docker.io/library/...
			}
			if strings.HasPrefix(cand, toComplete) && !slices.Contains(args, fam) && !slices.Contains(args, name) {
				out = append(out, cand)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeStages completes build --target with the names of the stages of
// the Dockerfile: -f's, else the context's (the first argument, "." before
// one is typed).
func completeStages(f *buildFlags) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		path := f.file
		if path == "" {
			dir := "."
			if len(args) > 0 {
				dir = args[0]
			}
			path = filepath.Join(dir, "Dockerfile")
		}
		if path == "-" || f.file == "" && len(args) > 0 && args[0] == "-" {
			return nil, cobra.ShellCompDirectiveNoFileComp // on stdin
		}
		data, err := os.ReadFile(path)
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		stages, err := dockerfileStages(data)
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range stages {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// dockerfileStages lists the names of the named stages (FROM ... AS NAME)
// of a Dockerfile, in order.
func dockerfileStages(dockerfile []byte) ([]string, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range res.AST.Children {
		if !strings.EqualFold(n.Value, "from") {
			continue
		}
		var words []string
		for w := n.Next; w != nil; w = w.Next {
			words = append(words, w.Value)
		}
		if len(words) == 3 && strings.EqualFold(words[1], "as") && !slices.Contains(out, words[2]) {
			out = append(out, words[2])
		}
	}
	return out, nil
}

// completeNoFiles is for arguments that are not files, nor anything
// strata can list.
func completeNoFiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeFilesThenNone completes files for the first n arguments, then
// nothing.
func completeFilesThenNone(n int) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) < n {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// imageFilterCompletions are the --filter values of `strata images` a
// completion offers.
var imageFilterCompletions = []cobra.Completion{"before=", "dangling=false", "dangling=true", "label=", "reference=", "since="}

// completeImageFilter completes the keys of --filter, and the images of
// before= and since=.
func completeImageFilter(g *globals) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		for _, k := range []string{"before=", "since="} {
			if rest, ok := strings.CutPrefix(toComplete, k); ok {
				names, dir := completeImages(g, 0)(c, nil, rest)
				for i := range names {
					names[i] = k + names[i]
				}
				return names, dir
			}
		}
		var out []cobra.Completion
		for _, f := range imageFilterCompletions {
			if strings.HasPrefix(f, toComplete) {
				out = append(out, f)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}
