// Command strata builds OCI images from Dockerfiles, with no daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/registry/hosts"
	"github.com/strata-build/strata/store"
)

// usageError marks a bad command line (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type globals struct {
	root   string
	config string // the registry configuration file
}

// registry is how commands reach registries: the configuration file's
// hosts, docker's credentials and certificates.
func (g *globals) registry() (registry.Options, error) {
	return registryOptions(g.config)
}

func (g *globals) open(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, g.rootDir())
}

// rootDir is the store root: --root, else store.DefaultRoot.
func (g *globals) rootDir() string {
	if g.root != "" {
		return g.root
	}
	return store.DefaultRoot()
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "strata",
		Short: "Build OCI images from Dockerfiles, with no daemon",
		Example: `  # build ./Dockerfile into the store as app:1, and list the store
  strata build -t app:1 .
  strata images

  # the same in a store of its own
  strata --root /tmp/store build -t app:1 .

  # shell completion for bash
  source <(strata completion bash)`,
		Version:       currentVersion().short(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("strata version {{.Version}}\n")
	// The defaults are described, not computed: the help reads the same
	// for every user, and so does the command reference made from it.
	root.PersistentFlags().StringVar(&g.root, "root", "", "store root (default: $STRATA_ROOT, else /var/lib/strata as root, else $XDG_DATA_HOME/strata)")
	root.PersistentFlags().StringVar(&g.config, "config", "", "registry configuration file (default: $"+hosts.ConfigEnv+", else /etc/strata/strata.toml as root, else $XDG_CONFIG_HOME/strata/strata.toml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true // newCompletion's, with help on installing it
	root.AddCommand(newBuild(g), newImages(g), newLoad(g), newImport(g), newSave(g), newVersion(), newDu(g), newPrune(g), newTag(g), newRmi(g), newInspect(g), newHistory(g), newPull(g), newExport(g), newPush(g), newLogin(g), newLogout(g), newCompletion())
	for _, c := range root.Commands() {
		c.DisableFlagsInUseLine = true // each Use shows its options
	}
	return root
}

// defaultMemoryLimit is the soft limit of the Go heap ($GOMEMLIMIT
// overrides it): the heap stays under it unless what a build holds at once
// needs more.
const defaultMemoryLimit = 160 << 20

func main() {
	executor.MaybeInit()
	if os.Getenv("GOGC") == "" {
		// A build is short-lived and allocates in bursts (context walks,
		// checksums): collect less often than the default...
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// ...but not so rarely that the heap grows to five times what
		// it holds: past this size the collector runs as often as it
		// must (a COPY of 100,000 files peaked at 500 MB without it).
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	err := newRoot().ExecuteContext(ctx)
	stopProfile()
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "ERROR:", err)
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}
