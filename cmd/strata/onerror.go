package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

// onErrorShell is `strata build --on-error=shell`. With a terminal on
// stdin and stderr, the first RUN step whose command fails gets an
// interactive shell in its sandbox, on its filesystem as the command left
// it, in place of the progress until the shell exits. Without one, it
// keeps a description of the step and how to get that shell, written
// after the build's progress.
type onErrorShell struct {
	shell    string
	in       io.Reader
	term     *os.File // stderr, when stdin and stderr are terminals
	progress progress.Holder
	rerun    string // the command line, from its working directory
	stdinUse string // how the build read stdin, if it did
	report   bytes.Buffer
}

func newOnErrorShell(c *cobra.Command, f *buildFlags, contextDir string, h progress.Holder) *onErrorShell {
	d := &onErrorShell{shell: f.onErrorShell, in: c.InOrStdin(), progress: h, rerun: shellQuote(os.Args)}
	if wd, err := os.Getwd(); err == nil {
		d.rerun = "cd " + shellQuote([]string{wd}) + " && " + d.rerun
	}
	in, ok := d.in.(*os.File)
	errf, ok2 := c.ErrOrStderr().(*os.File)
	if ok && ok2 && progress.IsTerminal(in) && progress.IsTerminal(errf) {
		d.term = errf
	}
	switch {
	case contextDir == "-":
		d.stdinUse = "the build context"
	case f.file == "-":
		d.stdinUse = "the Dockerfile"
	}
	return d
}

// onRunError is the build's builder.Options.OnRunError.
func (d *onErrorShell) onRunError(ctx context.Context, f *builder.FailedRun) {
	if d.term == nil {
		d.describe(f)
		return
	}
	d.progress.Hold()
	defer d.progress.Release()
	fmt.Fprintf(d.term, "\nstrata: %s failed with exit code %d\n", f.Name, f.Err.Code)
	fmt.Fprintf(d.term, "strata: starting %s in its sandbox, on its filesystem as the command left it; the build fails when the shell exits, and nothing of it is kept\n", d.shell)
	err := f.Shell(ctx, d.shell, executor.IO{Stdin: d.in, Stdout: d.term, Stderr: d.term})
	var ee *executor.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(d.term, "strata: could not start the shell %s (--on-error-shell) in the step's filesystem: %v\n", d.shell, err)
	}
	fmt.Fprintln(d.term)
}

// describe writes, into the report, the failed step as its command ran
// and how to get a shell there.
func (d *onErrorShell) describe(f *builder.FailedRun) {
	b := &d.report
	fmt.Fprintf(b, "strata: --on-error=shell: no terminal on stdin and stderr, so no shell was opened. The failed step:\n")
	row := func(k, v string) { fmt.Fprintf(b, "  %-8s %s\n", k, v) }
	row("step", f.Name)
	row("command", shellQuote(f.Spec.Args))
	row("workdir", cmp.Or(f.Spec.Cwd, "/"))
	row("user", cmp.Or(f.Spec.User, "root"))
	row("network", f.Spec.Network.String())
	if f.Spec.Insecure {
		row("security", "insecure")
	}
	label := "env"
	for _, e := range f.Spec.Env {
		name, _, _ := strings.Cut(e, "=")
		if slices.Contains(f.Hidden, name) {
			e = name + "=(not shown)"
		}
		row(label, e)
		label = ""
	}
	label = "mounts"
	for _, m := range f.Mounts {
		row(label, describeMount(m))
		label = ""
	}
	fmt.Fprintf(b, "strata: for a shell in its sandbox, on its filesystem as the command left it, run the build again with a terminal on stdin and stderr:\n  %s\n", d.rerun)
	if d.stdinUse != "" {
		fmt.Fprintf(b, "  (it reads %s from stdin, which the shell needs: give it as a file)\n", d.stdinUse)
	}
}

// writeReport writes the description of a failed step, if there is one.
func (d *onErrorShell) writeReport(w io.Writer) {
	_, _ = w.Write(d.report.Bytes())
}

// describeMount is a RUN --mount as the description of a step shows it.
func describeMount(m llb.Mount) string {
	parts := []string{m.Dest, string(m.Type)}
	switch {
	case m.Cache != nil:
		parts = append(parts, "id="+m.Cache.ID, "sharing="+string(m.Cache.Sharing))
	case m.Secret != nil:
		parts = append(parts, "id="+m.Secret.ID)
	case m.SSH != nil:
		parts = append(parts, "id="+m.SSH.ID)
	case m.Type == llb.MountTmpfs:
		parts = append(parts, "(empty again in a shell)")
	}
	if m.Selector != "" && m.Type == llb.MountBind {
		parts = append(parts, "source="+m.Selector)
	}
	if m.Readonly {
		parts = append(parts, "ro")
	}
	return strings.Join(parts, " ")
}

// shellQuote writes args as a POSIX shell would read them back.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
