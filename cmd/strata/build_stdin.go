package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/context/local"
)

// stdinContext reads the stdin of `strata build -`, as docker build does: a
// tar (plain, gzip, bzip2, xz or zstd) is the build context and is extracted
// into a new temporary directory, confined to it; anything else is the
// Dockerfile of an empty context. It sets opts.ContextDir (and the
// Dockerfile) and returns the directory for the caller to remove.
func stdinContext(c *cobra.Command, opts *builder.Options) (string, error) {
	data, err := readAllStdin(c)
	if err != nil {
		return "", fmt.Errorf("read the context from stdin: %w", err)
	}
	dir, err := os.MkdirTemp("", "strata-context-")
	if err != nil {
		return "", err
	}
	opts.ContextDir = dir
	if !local.IsTar(data) {
		opts.Dockerfile = ""
		opts.DockerfileData = data
		return dir, nil
	}
	if err := local.ExtractTar(bytes.NewReader(data), dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if opts.Dockerfile != "" && !filepath.IsAbs(opts.Dockerfile) {
		// -f names a file inside the context tar.
		opts.Dockerfile = filepath.Join(dir, opts.Dockerfile)
	}
	return dir, nil
}

// printCheck ends `strata build --check` as docker build does: the
// warnings are already printed, this says how many there were.
func printCheck(w io.Writer, res *builder.Result) {
	switch n := len(res.Warnings); n {
	case 0:
		fmt.Fprintln(w, "Check complete, no warnings found.")
	case 1:
		fmt.Fprintln(w, "Check complete, 1 warning has been found!")
	default:
		fmt.Fprintf(w, "Check complete, %d warnings have been found!\n", n)
	}
}

// printWarnings repeats a build's warnings after its progress, where the
// first print, before the steps ran, may have scrolled away:
//
//	2 warnings:
//	 - JSONArgsRecommended: JSON arguments recommended for CMD ... (Dockerfile:3)
//	 - build arg VERSOIN was not consumed by any ARG of the stages built (did you mean VERSION?)
func printWarnings(w io.Writer, res *builder.Result) {
	n := len(res.Warnings) + len(res.UnusedArgs)
	switch n {
	case 0:
		return
	case 1:
		fmt.Fprintln(w, "1 warning:")
	default:
		fmt.Fprintf(w, "%d warnings:\n", n)
	}
	for _, x := range res.Warnings {
		fmt.Fprintf(w, " - %s\n", x)
	}
	for _, u := range res.UnusedArgs {
		fmt.Fprintf(w, " - %s\n", u)
	}
}
