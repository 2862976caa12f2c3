package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/internal/atomicfile"
	"github.com/strata-build/strata/internal/progress"
)

// progressChoice is the progress output of a build: -q is quiet, else
// progress.Choose decides from --progress, the environment (lookup) and
// whether stderr is a terminal. A bad mode is a usage error.
func (f *buildFlags) progressChoice(lookup func(string) (string, bool), terminal bool) (progress.Choice, error) {
	if f.quiet {
		return progress.Choice{Mode: progress.ModeQuiet}, nil
	}
	ch, err := progress.Choose(f.progress, f.progressSet, lookup, terminal)
	if err != nil {
		return ch, usageError{err}
	}
	return ch, nil
}

// stderrTerminal reports whether c's standard error is a terminal.
func stderrTerminal(c *cobra.Command) bool {
	f, ok := c.ErrOrStderr().(*os.File)
	return ok && progress.IsTerminal(f)
}

// startProgress returns the renderer of ch, writing to c's standard
// error. Close it when the work is over, also after an error.
func startProgress(c *cobra.Command, ch progress.Choice, o progress.Options) progress.Renderer {
	o.NoColor = !ch.Color
	return progress.New(ch.Mode, c.ErrOrStderr(), o)
}

// commandProgress is the progress of a command of one step with no
// --progress flag (pull, push): none with -q, else as BUILDKIT_PROGRESS
// or auto say, without a summary.
func commandProgress(c *cobra.Command, quiet bool) (progress.Renderer, error) {
	if quiet {
		return progress.Quiet{}, nil
	}
	ch, err := progress.Choose(string(progress.ModeAuto), false, os.LookupEnv, stderrTerminal(c))
	if err != nil {
		return nil, usageError{err}
	}
	return startProgress(c, ch, progress.Options{NoSummary: true}), nil
}

// checkTracePath fails, before any work, when the directory of a --trace
// file is missing.
func checkTracePath(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s is not a directory", dir)
	}
	if err != nil {
		return fmt.Errorf("--trace %s: %w", path, err)
	}
	return nil
}

// writeTrace writes tr to path atomically: a reader sees the old file or
// the whole trace.
func writeTrace(path string, tr *progress.Trace) error {
	f, err := atomicfile.New(path, 0o644)
	if err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	defer f.Close()
	if err := tr.WriteJSON(f); err != nil {
		return fmt.Errorf("write trace %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}
