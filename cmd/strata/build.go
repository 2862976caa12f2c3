package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
)

type buildFlags struct {
	file, target, progress, iidfile, metadataFile string
	tags, buildArgs, outputs, labels, noCacheFilt []string
	noCache                                       bool
	check                                         bool
	jobs                                          int
}

func newBuild(g *globals) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build [OPTIONS] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runBuild(c, g, f, args[0])
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "name of the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)")
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (name:tag)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)")
	fl.StringVar(&f.target, "target", "", "build this stage")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache")
	fl.StringArrayVar(&f.noCacheFilt, "no-cache-filter", nil, "do not use the cache for these stages")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "output: type=image|oci|docker,dest=PATH,name=NAME")
	fl.StringArrayVar(&f.labels, "label", nil, "set a label on the image (KEY=VALUE)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, plain, quiet")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write build result metadata to this file")
	fl.BoolVar(&f.check, "check", false, "only lint the Dockerfile: print its warnings, build nothing")
	fl.IntVar(&f.jobs, "jobs", 0, "steps run at once (default: twice the CPUs, at least 4)")
	return c
}

func runBuild(c *cobra.Command, g *globals, f *buildFlags, contextDir string) error {
	opts := builder.Options{
		ContextDir:    contextDir,
		Dockerfile:    f.file,
		Target:        f.target,
		NoCache:       f.noCache,
		NoCacheFilter: f.noCacheFilt,
		Jobs:          f.jobs,
		Tags:          f.tags,
		Warnings:      c.ErrOrStderr(),
	}
	var err error
	if opts.BuildArgs, err = parseKV(f.buildArgs, "--build-arg", true); err != nil {
		return err
	}
	if opts.Labels, err = parseKV(f.labels, "--label", false); err != nil {
		return err
	}
	if contextDir == "-" {
		dir, err := stdinContext(c, &opts)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	opts.CheckOnly = f.check
	if f.file == "-" {
		opts.Dockerfile = ""
		if opts.DockerfileData, err = readAllStdin(c); err != nil {
			return err
		}
	}
	switch f.progress {
	case "auto", "plain", "tty":
		opts.Progress = progress.NewPlain(c.ErrOrStderr())
	case "quiet":
		opts.Progress = progress.Discard
	default:
		return usagef("--progress: unknown mode %q (auto, plain, quiet)", f.progress)
	}
	ctx := c.Context()
	st, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if opts.Exports, err = parseOutputs(f.outputs, st, len(f.tags) > 0); err != nil {
		return err
	}
	res, err := st.Build(ctx, opts)
	if err != nil {
		return err
	}
	if f.check {
		printCheck(c.OutOrStdout(), res)
		return nil
	}
	out := c.OutOrStdout()
	fmt.Fprintf(out, "image %s\n", res.Manifest.Digest)
	for _, r := range res.Reports {
		if r.Path != "" {
			fmt.Fprintf(out, "wrote %s digest %s size %d\n", r.Path, r.Digest, r.Size)
		}
	}
	for _, e := range opts.Exports {
		if _, ok := e.(exporter.ImageStore); ok {
			for _, t := range f.tags {
				fmt.Fprintf(out, "tagged %s\n", t)
			}
		}
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.Config.String()), 0o644); err != nil {
			return err
		}
	}
	if f.metadataFile != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"containerimage.digest":        res.Manifest.Digest,
			"containerimage.config.digest": res.Config,
			"containerimage.descriptor":    res.Manifest,
			"strata.steps":                 res.Steps,
		}, "", "  ")
		if err := os.WriteFile(f.metadataFile, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parseOutputs turns -o values into exporters. With no -o the image goes to
// the store, as docker build does.
func parseOutputs(vals []string, st *builder.Store, tagged bool) ([]exporter.Exporter, error) {
	if len(vals) == 0 {
		return []exporter.Exporter{exporter.ImageStore{Images: st.Images}}, nil
	}
	var out []exporter.Exporter
	for _, v := range vals {
		kv := map[string]string{}
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(part, "=")
			if !ok {
				if len(vals) == 1 && !strings.Contains(v, "=") {
					// -o PATH is a local directory export in buildx.
					return nil, usagef("-o %s: local directory export is not supported yet; use type=oci,dest=FILE", v)
				}
				return nil, usagef("-o %s: %q is not KEY=VALUE", v, part)
			}
			kv[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		dest := kv["dest"]
		switch kv["type"] {
		case "image":
			out = append(out, exporter.ImageStore{Images: st.Images})
		case "oci":
			if dest == "" {
				return nil, usagef("-o %s: type=oci needs dest=FILE", v)
			}
			if kv["tar"] == "false" {
				out = append(out, exporter.OCILayout{Dir: dest})
			} else {
				out = append(out, exporter.OCIArchive{Path: dest})
			}
		case "docker":
			if dest == "" {
				return nil, usagef("-o %s: type=docker needs dest=FILE", v)
			}
			out = append(out, exporter.DockerArchive{Path: dest})
		case "":
			return nil, usagef("-o %s: missing type=", v)
		default:
			return nil, usagef("-o %s: unknown output type %q (image, oci, docker)", v, kv["type"])
		}
	}
	return out, nil
}

// parseKV parses KEY=VALUE flags; with fromEnv a bare KEY takes the
// environment's value (docker build --build-arg KEY).
func parseKV(vals []string, flag string, fromEnv bool) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if k == "" {
			return nil, usagef("%s %q: empty key", flag, v)
		}
		if !ok {
			if !fromEnv {
				return nil, usagef("%s %q: want KEY=VALUE", flag, v)
			}
			e, set := os.LookupEnv(k)
			if !set {
				continue
			}
			val = e
		}
		m[k] = val
	}
	return m, nil
}
