package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// referencePath is the command reference, from this package's directory.
const referencePath = "../../docs/reference.md"

var updateDocs = flag.Bool("update-docs", false, "write "+referencePath+" from the commands (make docs)")

// The committed command reference is the one the commands make. `make
// docs` writes it.
func TestReferenceDocs(t *testing.T) {
	var b bytes.Buffer
	if err := writeReference(&b, newRoot()); err != nil {
		t.Fatal(err)
	}
	if *updateDocs {
		if err := os.WriteFile(referencePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v (make docs writes it)", err)
	}
	if diff := cmp.Diff(string(committed), b.String()); diff != "" {
		t.Errorf("%s is out of date with the commands: run make docs (-committed +made):\n%s", referencePath, diff)
	}
}

// writeReference writes the Markdown reference of root and its commands:
// an index, then for each command its description, usage, examples and
// options, as --help shows them.
func writeReference(w io.Writer, root *cobra.Command) error {
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	cmds := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			cmds = append(cmds, c)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# strata command reference\n\n")
	fmt.Fprintf(&b, "<!-- Made from the commands by `make docs`; edit the commands, not this file. -->\n\n")
	fmt.Fprintf(&b, "| Command | Description |\n|---|---|\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", c.CommandPath(), anchor(c.CommandPath()), escapeMarkdown(c.Short))
	}
	for _, c := range cmds {
		c.InitDefaultHelpFlag()
		fmt.Fprintf(&b, "\n## %s\n\n", c.CommandPath())
		writeProse(&b, cmpOrDefault(c.Long, c.Short))
		use := c.UseLine()
		if c.HasAvailableSubCommands() {
			use = c.CommandPath() + " [OPTIONS] COMMAND"
		}
		fmt.Fprintf(&b, "```\n%s\n```\n", use)
		if c.Example != "" {
			fmt.Fprintf(&b, "\n### Examples\n\n```sh\n%s\n```\n", dedent(c.Example))
		}
		if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(&b, "\n### Options\n\n```\n%s```\n", fs.FlagUsages())
		}
		if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(&b, "\n### Global options\n\n```\n%s```\n", fs.FlagUsages())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeProse writes a command's description: its text as Markdown, its
// indented lines (a table of values, say) as they are, in a code block.
func writeProse(b *strings.Builder, text string) {
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		lines := strings.Split(para, "\n")
		for len(lines) > 0 {
			indented := strings.HasPrefix(lines[0], "  ")
			n := 1
			for n < len(lines) && strings.HasPrefix(lines[n], "  ") == indented {
				n++
			}
			run := strings.Join(lines[:n], "\n")
			if indented {
				fmt.Fprintf(b, "```\n%s\n```\n\n", dedent(run))
			} else {
				fmt.Fprintf(b, "%s\n\n", escapeMarkdown(run))
			}
			lines = lines[n:]
		}
	}
}

// dedent removes the two spaces cobra's help indents examples by.
func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(lines, "\n")
}

// escapeMarkdown makes text read in Markdown as it does in --help.
func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", `\<`, ">", `\>`, "[", `\[`, "]", `\]`, "|", `\|`).Replace(s)
}

// anchor is the fragment GitHub gives the heading text h.
func anchor(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), " ", "-")
}
