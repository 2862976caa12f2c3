package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/runc"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

type buildFlags struct {
	file, target, progress, iidfile, metadataFile string
	tags, buildArgs, outputs, labels, noCacheFilt []string
	noCache, pull, quiet                          bool
	check                                         bool
	jobs                                          int
	secrets, ssh, addHosts, allow                 []string
	network, runtime                              string
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
	fl.BoolVar(&f.pull, "pull", false, "always pull the base images again (a newer digest replaces the local one)")
	fl.StringArrayVar(&f.noCacheFilt, "no-cache-filter", nil, "do not use the cache for these stages")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "output: type=image|oci|docker|local|tar,dest=PATH (a bare PATH is type=local)")
	fl.StringArrayVar(&f.labels, "label", nil, "set a label on the image (KEY=VALUE)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, plain, quiet")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID (the config digest) on success")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write build result metadata to this file")
	fl.BoolVar(&f.check, "check", false, "only lint the Dockerfile: print its warnings, build nothing")
	fl.IntVar(&f.jobs, "jobs", 0, "steps run at once (default: twice the CPUs, at least 4)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	fl.StringArrayVar(&f.ssh, "ssh", nil, "agent socket for RUN --mount=type=ssh: default or ID=SOCKET (default: $SSH_AUTH_SOCK)")
	fl.StringVar(&f.network, "network", "default", "network of RUN steps without --network: default, none, host")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a host to /etc/hosts in RUN steps (HOST:IP)")
	fl.StringArrayVar(&f.allow, "allow", nil, "allow an entitlement: security.insecure")
	fl.StringVar(&f.runtime, "runtime", "sandbox", "what runs RUN steps: sandbox (built in) or runc")
	return c
}

func runBuild(c *cobra.Command, g *globals, f *buildFlags, contextDir string) error {
	opts := builder.Options{
		ContextDir:    contextDir,
		Dockerfile:    f.file,
		Target:        f.target,
		NoCache:       f.noCache,
		Pull:          f.pull,
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
	if err := parseRunFlags(f, &opts); err != nil {
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
	if f.quiet {
		f.progress = "quiet"
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
	if opts.Executor, err = newRuntime(f.runtime, st); err != nil {
		return err
	}
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
	if f.quiet {
		fmt.Fprintln(out, res.Config)
		return writeBuildFiles(f, res)
	}
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
	return writeBuildFiles(f, res)
}

// writeBuildFiles writes --iidfile and --metadata-file.
func writeBuildFiles(f *buildFlags, res *builder.Result) error {
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.Config.String()), 0o644); err != nil {
			return err
		}
	}
	if f.metadataFile != "" {
		b, err := json.MarshalIndent(map[string]any{
			"containerimage.digest":        res.Manifest.Digest,
			"containerimage.config.digest": res.Config,
			"containerimage.descriptor":    res.Manifest,
			"strata.steps":                 res.Steps,
		}, "", "  ")
		if err != nil {
			return err
		}
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
		if !strings.Contains(v, "=") {
			// -o PATH is a local directory export in buildx ("-" a tar on stdout).
			if v == "-" {
				v = "type=tar,dest=-"
			} else {
				v = "type=local,dest=" + v
			}
		}
		kv := map[string]string{}
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(part, "=")
			if !ok {
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
		case "local":
			if dest == "" {
				return nil, usagef("-o %s: type=local needs dest=DIR", v)
			}
			out = append(out, exporter.LocalDir{Dir: dest})
		case "tar":
			if dest == "" {
				return nil, usagef("-o %s: type=tar needs dest=FILE (- for stdout)", v)
			}
			out = append(out, exporter.RootfsTar{Path: dest})
		case "":
			return nil, usagef("-o %s: missing type=", v)
		default:
			return nil, usagef("-o %s: unknown output type %q (image, oci, docker, local, tar)", v, kv["type"])
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

// parseRunFlags turns --secret, --ssh, --network, --add-host and --allow
// into the build's options; secret values are read here.
func parseRunFlags(f *buildFlags, opts *builder.Options) error {
	var err error
	if opts.Secrets, err = parseSecrets(f.secrets); err != nil {
		return err
	}
	if opts.SSH, err = parseSSH(f.ssh); err != nil {
		return err
	}
	switch f.network {
	case "default", "":
	case "none":
		opts.Network = llb.NetNone
	case "host":
		opts.Network = llb.NetHost
	default:
		return usagef("--network: unknown mode %q (default, none, host)", f.network)
	}
	for _, h := range f.addHosts {
		host, ip, ok := strings.Cut(h, ":")
		if !ok {
			host, ip, ok = strings.Cut(h, "=")
		}
		if !ok || host == "" || net.ParseIP(ip) == nil {
			return usagef("--add-host %q: want HOST:IP", h)
		}
		opts.ExtraHosts = append(opts.ExtraHosts, executor.HostIP{Host: host, IP: ip})
	}
	for _, a := range f.allow {
		switch a {
		case "security.insecure":
			opts.AllowInsecure = true
		case "network.host":
		default:
			return usagef("--allow %q: unknown entitlement (security.insecure, network.host)", a)
		}
	}
	return nil
}

// parseSecrets reads --secret values as docker buildx does:
// [type=file|env,]id=ID[,src=FILE|source=FILE][,env=VAR].
func parseSecrets(vals []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, v := range vals {
		kv := map[string]string{}
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(part, "=")
			if !ok {
				return nil, usagef("--secret %s: %q is not KEY=VALUE", v, part)
			}
			kv[strings.ToLower(strings.TrimSpace(k))] = val
		}
		id, typ := kv["id"], kv["type"]
		src := kv["src"]
		if src == "" {
			src = kv["source"]
		}
		if typ == "" {
			typ = "file"
			if kv["env"] != "" || (src == "" && os.Getenv(id) != "") {
				typ = "env"
			}
		}
		if id == "" {
			id = filepath.Base(src)
			if typ == "env" {
				id = kv["env"]
			}
		}
		if id == "" {
			return nil, usagef("--secret %s: no id", v)
		}
		switch typ {
		case "file":
			if src == "" {
				return nil, usagef("--secret %s: no src=FILE", v)
			}
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("read secret %q: %w", id, err)
			}
			out[id] = b
		case "env":
			name := kv["env"]
			if name == "" {
				name = cmp.Or(src, id)
			}
			val, ok := os.LookupEnv(name)
			if !ok {
				return nil, fmt.Errorf("secret %q: environment variable %s is not set", id, name)
			}
			out[id] = []byte(val)
		default:
			return nil, usagef("--secret %s: unknown type %q (file, env)", v, typ)
		}
	}
	return out, nil
}

// parseSSH reads --ssh values: ID or ID=SOCKET, where "default" without a
// socket is $SSH_AUTH_SOCK. Only agent sockets are supported, not key files.
func parseSSH(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		id, sock, _ := strings.Cut(v, "=")
		if id == "" {
			return nil, usagef("--ssh %q: no id", v)
		}
		if sock == "" {
			if sock = os.Getenv("SSH_AUTH_SOCK"); sock == "" {
				return nil, usagef("--ssh %s: no socket given and SSH_AUTH_SOCK is not set", v)
			}
		}
		if strings.Contains(sock, ",") {
			return nil, usagef("--ssh %s: key files are not supported; give an agent socket", v)
		}
		fi, err := os.Stat(sock)
		if err != nil {
			return nil, fmt.Errorf("--ssh %s: %w", id, err)
		}
		if fi.Mode().Type() != os.ModeSocket {
			return nil, usagef("--ssh %s: %s is not an agent socket (key files are not supported)", id, sock)
		}
		out[id] = sock
	}
	return out, nil
}

// newRuntime returns the executor for --runtime; nil means the store's
// built-in sandbox.
func newRuntime(name string, st *builder.Store) (executor.Executor, error) {
	switch name {
	case "sandbox", "":
		return nil, nil
	case "runc":
		rt, err := runc.New(runc.Options{StateDir: filepath.Join(st.TmpDir(), "runc")})
		if err != nil {
			return nil, fmt.Errorf("--runtime runc: %w", err)
		}
		return rt, nil
	}
	return nil, usagef("--runtime: unknown runtime %q (sandbox, runc)", name)
}
