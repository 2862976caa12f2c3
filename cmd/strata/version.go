package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// versionInfo is what `strata version` prints.
type versionInfo struct {
	Version string
	// Commit is the VCS revision the binary was built from ("" when the
	// build did not record it); Modified says the tree had changes.
	Commit    string
	Modified  bool
	GoVersion string
	Os, Arch  string
}

// readVersion reads the version from the link-time version, else the
// module version of `go install ...@VERSION`, and the commit from the
// VCS stamp of the build.
func readVersion(linked string, info *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: linked, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH}
	if !ok {
		return v
	}
	if v.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		v.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func currentVersion() versionInfo {
	info, ok := debug.ReadBuildInfo()
	return readVersion(version, info, ok)
}

// short is the one line of `strata --version`.
func (v versionInfo) short() string {
	s := v.Version
	if v.Commit != "" {
		s += ", commit " + v.Commit[:min(12, len(v.Commit))]
		if v.Modified {
			s += " (modified)"
		}
	}
	return s
}

func newVersion() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the version, commit and Go version strata was built with",
		Example: `  strata version
  strata version --format '{{.Commit}}'
  strata --version`,
		Long: `Show strata's version, the VCS commit it was built from (with
"(modified)" when the tree had uncommitted changes), the Go version that
built it and the platform it runs on.

--format takes a Go template over the fields .Version, .Commit, .Modified,
.GoVersion, .Os and .Arch; "json" prints them as JSON.`,
		Args:              exactArgs(0),
		ValidArgsFunction: completeNoFiles,
		RunE: func(c *cobra.Command, args []string) error {
			v := currentVersion()
			if format != "" {
				fm, err := parseFormat(format, "", nil)
				if err != nil {
					return err
				}
				return fm.write(c.OutOrStdout(), []any{v})
			}
			commit := v.Commit
			switch {
			case commit == "":
				commit = "unknown"
			case v.Modified:
				commit += " (modified)"
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 1, ' ', 0)
			fmt.Fprintf(tw, "Version:\t%s\n", v.Version)
			fmt.Fprintf(tw, "Git commit:\t%s\n", commit)
			fmt.Fprintf(tw, "Go version:\t%s\n", v.GoVersion)
			fmt.Fprintf(tw, "OS/Arch:\t%s/%s\n", v.Os, v.Arch)
			return tw.Flush()
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template (json for JSON)")
	return c
}
