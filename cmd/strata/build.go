package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/store"
	"github.com/tonistiigi/go-csvvalue"
)

type buildFlags struct {
	file, target, progress, iidfile, metadataFile string
	trace                                         string
	progressSet                                   bool // --progress was given
	tags, buildArgs, outputs, labels, noCacheFilt []string
	noCache, pull, quiet, push                    bool
	check                                         bool
	jobs                                          int
	secrets, ssh, addHosts, allow                 []string
	cacheFrom, cacheTo                            []string
	network, runtime                              string
	onError, onErrorShell                         string
	onErrorShellSet                               bool // --on-error-shell was given
}

func newBuild(g *globals) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build [OPTIONS] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Example: `  # build ./Dockerfile into the store, named app:1 and app:latest
  strata build -t app:1 -t app:latest .

  # another Dockerfile, one of its stages, a build argument
  strata build -f Dockerfile.prod --target app --build-arg VERSION=2 -t app:2 .

  # write an OCI archive and a docker archive instead of storing the image
  strata build -o type=oci,dest=app.oci.tar -o type=docker,dest=app.docker.tar .

  # the built filesystem into ./out
  strata build -o ./out .

  # build and push, with a build cache kept in the registry
  strata build --push -t registry.example.com/app:1 \
    --cache-from type=registry,ref=registry.example.com/app:cache \
    --cache-to type=registry,ref=registry.example.com/app:cache,mode=max .

  # a Dockerfile on stdin, with an empty context
  strata build -t hello - < Dockerfile

  # a secret file and the SSH agent for RUN --mount=type=secret|ssh
  strata build --secret id=npmrc,src=$HOME/.npmrc --ssh default -t app .

  # print only the image ID; only lint the Dockerfile
  strata build -q .
  strata build --check .`,
		Args: exactArgs(1),
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveFilterDirs // the context
		},
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
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "output: type=image|registry|oci|docker|local|tar,dest=PATH[,compression=gzip|zstd|uncompressed] (a bare PATH is type=local)")
	fl.BoolVar(&f.push, "push", false, "push the image to the registry of each -t name (shorthand for -o type=registry)")
	fl.StringArrayVar(&f.cacheFrom, "cache-from", nil, "import build cache: type=registry,ref=NAME | type=local,src=DIR (a bare NAME is a registry ref)")
	fl.StringArrayVar(&f.cacheTo, "cache-to", nil, "export build cache: type=registry,ref=NAME | type=local,dest=DIR | type=inline [,mode=min|max][,ignore-error=true]")
	fl.StringArrayVar(&f.labels, "label", nil, "set a label on the image (KEY=VALUE)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto (tty on a terminal, else plain), tty, plain, rawjson, quiet; without the flag, $BUILDKIT_PROGRESS")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID (the config digest) on success")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write build result metadata to this file")
	fl.StringVar(&f.trace, "trace", "", "write the build's timeline to this file as Chrome trace-event JSON (open it in ui.perfetto.dev or chrome://tracing)")
	fl.BoolVar(&f.check, "check", false, "only lint the Dockerfile: print its warnings, build nothing")
	fl.IntVar(&f.jobs, "jobs", 0, "steps run at once (default: twice the CPUs, at least 4)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	fl.StringArrayVar(&f.ssh, "ssh", nil, "agent socket for RUN --mount=type=ssh: default or ID=SOCKET (default: $SSH_AUTH_SOCK)")
	fl.StringVar(&f.network, "network", "default", "network of RUN steps without --network: default, none, host")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a host to /etc/hosts in RUN steps (HOST:IP)")
	fl.StringArrayVar(&f.allow, "allow", nil, "allow an entitlement: security.insecure")
	fl.StringVar(&f.runtime, "runtime", "sandbox", "what runs RUN steps: sandbox (built in) or runc")
	_ = c.RegisterFlagCompletionFunc("target", completeStages(f))
	_ = c.RegisterFlagCompletionFunc("no-cache-filter", completeStages(f))
	for flag, values := range map[string][]cobra.Completion{
		"progress": {"auto", "tty", "plain", "rawjson", "quiet"},
		"network":  {"default", "none", "host"},
		"runtime":  {"sandbox", "runc"},
		"allow":    {"security.insecure", "network.host"},
	} {
		_ = c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
	fl.StringVar(&f.onError, "on-error", "fail", "when a RUN step fails: fail, or shell (a shell in its sandbox as the command left it; without a terminal, how to get one)")
	fl.StringVar(&f.onErrorShell, "on-error-shell", "/bin/sh", "the shell of --on-error=shell, in the step's filesystem")
	return c
}

func runBuild(c *cobra.Command, g *globals, f *buildFlags, contextDir string) (err error) {
	f.progressSet = c.Flags().Changed("progress")
	f.onErrorShellSet = c.Flags().Changed("on-error-shell")
	opts, err := f.options(contextDir)
	if err != nil {
		return err
	}
	opts.Warnings = c.ErrOrStderr()
	if opts.Registry, err = g.registry(); err != nil {
		return err
	}
	if contextDir == "-" {
		dir, err := stdinContext(c, &opts)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if f.file == "-" {
		if opts.DockerfileData, err = readAllStdin(c); err != nil {
			return err
		}
	}
	choice, err := f.progressChoice(os.LookupEnv, stderrTerminal(c))
	if err != nil {
		return err
	}
	if err := checkTracePath(f.trace); err != nil {
		return err
	}
	r := startProgress(c, choice, progress.Options{})
	if tty, ok := r.(*progress.TTY); ok {
		opts.Warnings = tty.Writer() // above the live view, not through it
	}
	var debug *onErrorShell
	if f.onError == "shell" {
		h := progress.Holdable(r)
		debug = newOnErrorShell(c, f, contextDir, h)
		opts.OnRunError = debug.onRunError
		r = h
	}
	opts.Progress = r
	var trace *progress.Trace
	if f.trace != "" {
		trace = progress.NewTrace()
		opts.Progress = progress.Tee(r, trace)
	}
	var res *builder.Result
	err = withStore(c, g, func(st *store.Store) error {
		res, err = builder.Build(c.Context(), st, opts)
		return err
	})
	// The view ends, failed steps' output and the summary are written,
	// before the result or the error. Close's only error is one writing
	// to stderr, where it could not be reported.
	_ = r.Close()
	if res != nil && !f.check && (choice.Mode == progress.ModePlain || choice.Mode == progress.ModeTTY) {
		printWarnings(c.ErrOrStderr(), res)
	}
	if debug != nil {
		debug.writeReport(c.ErrOrStderr())
	}
	if trace != nil {
		// Written for a failed build too: that is when it is read.
		if terr := writeTrace(f.trace, trace); terr != nil {
			if err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "WARNING: %v\n", terr)
			} else {
				err = terr
			}
		}
	}
	if err != nil {
		return err
	}
	out := c.OutOrStdout()
	switch {
	case f.check:
		printCheck(out, res)
		return nil
	case f.quiet:
		fmt.Fprintln(out, res.Config)
		return writeBuildFiles(f, res)
	}
	fmt.Fprintf(out, "image %s\n", res.Manifest.Digest)
	for _, r := range res.Reports {
		if r.Path != "" {
			fmt.Fprintf(out, "wrote %s digest %s size %d\n", r.Path, r.Digest, r.Size)
		}
		for _, p := range r.Pushed {
			fmt.Fprintf(out, "pushed %s\n", p)
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

// options turns the flags into the build's options, reading secret values
// and checking everything that can be checked before the build: a bad flag
// is a usage error (exit 2) before any work.
func (f *buildFlags) options(contextDir string) (builder.Options, error) {
	opts := builder.Options{
		ContextDir:    contextDir,
		Dockerfile:    f.file,
		Target:        f.target,
		NoCache:       f.noCache,
		Pull:          f.pull,
		NoCacheFilter: f.noCacheFilt,
		Jobs:          f.jobs,
		Tags:          f.tags,
		CheckOnly:     f.check,
		Runtime:       f.runtime,
	}
	if f.file == "-" {
		opts.Dockerfile = ""
		if contextDir == "-" {
			return opts, usagef("-f - and a context on stdin cannot both read stdin")
		}
	}
	if _, err := f.progressChoice(os.LookupEnv, false); err != nil {
		return opts, err
	}
	switch f.onError {
	case "", "fail", "shell":
	default:
		return opts, usagef("--on-error: unknown value %q (fail, shell)", f.onError)
	}
	if f.onErrorShellSet && f.onError != "shell" {
		return opts, usagef("--on-error-shell needs --on-error=shell")
	}
	if f.onError == "shell" && f.onErrorShell == "" {
		return opts, usagef("--on-error-shell: no shell given")
	}
	if f.jobs < 0 {
		return opts, usagef("--jobs %d: must be positive", f.jobs)
	}
	var err error
	if opts.BuildArgs, err = parseKV(f.buildArgs, "--build-arg", true); err != nil {
		return opts, err
	}
	// SOURCE_DATE_EPOCH in the environment is a build arg, as buildx passes
	// it, unless --build-arg sets it: CI runners that export it get the
	// same digests.
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		if _, set := opts.BuildArgs["SOURCE_DATE_EPOCH"]; !set {
			opts.BuildArgs["SOURCE_DATE_EPOCH"] = v
		}
	}
	if opts.Labels, err = parseKV(f.labels, "--label", false); err != nil {
		return opts, err
	}
	if err := parseRunFlags(f, &opts); err != nil {
		return opts, err
	}
	if opts.Exports, err = parseOutputs(f.outputs); err != nil {
		return opts, err
	}
	if opts.Compression, opts.ForceCompression, err = parseCompression(f.outputs); err != nil {
		return opts, err
	}
	if opts.CacheFrom, err = parseCacheSpecs(f.cacheFrom, false); err != nil {
		return opts, err
	}
	if opts.CacheTo, err = parseCacheSpecs(f.cacheTo, true); err != nil {
		return opts, err
	}
	if f.push {
		if len(f.tags) == 0 {
			return opts, usagef("--push needs a name: give -t NAME")
		}
		if len(f.outputs) == 0 {
			opts.Exports = nil // --push alone pushes, as buildx's does
		}
		opts.Exports = append(opts.Exports, exporter.Registry{})
	}
	if err := opts.Validate(); err != nil {
		return opts, usageError{err}
	}
	return opts, nil
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

// parseCompression reads compression=, compression-level= and
// force-compression= of the -o values, as buildx spells them. strata
// writes one image for all its outputs, so outputs that ask for different
// compressions are a usage error.
func parseCompression(vals []string) (builder.Compression, bool, error) {
	var c builder.Compression
	var force bool
	from := ""
	for _, v := range vals {
		if !strings.Contains(v, "=") {
			continue
		}
		kv, err := splitOptions("-o", v)
		if err != nil {
			return c, false, err
		}
		var this builder.Compression
		this.Type = kv["compression"]
		if lv, ok := kv["compression-level"]; ok {
			if this.Level, err = strconv.Atoi(lv); err != nil {
				return c, false, usagef("-o %s: compression-level=%q is not a number", v, lv)
			}
		}
		thisForce := kv["force-compression"] == "true"
		if this == (builder.Compression{}) && !thisForce {
			continue
		}
		switch kv["type"] {
		case "image", "registry", "oci", "docker":
		default:
			return c, false, usagef("-o %s: compression applies to image outputs (image, registry, oci, docker), not type=%s", v, kv["type"])
		}
		if err := this.Validate(); err != nil {
			return c, false, usagef("-o %s: %v", v, err)
		}
		if from != "" && (this != c || thisForce != force) {
			return c, false, usagef("-o %s: asks for another compression than -o %s: strata writes one image for all its outputs", v, from)
		}
		c, force, from = this, thisForce, v
	}
	return c, force, nil
}

// parseOutputs turns -o values into exporters. With no -o the image goes to
// the store, as docker build does.
func parseOutputs(vals []string) ([]exporter.Exporter, error) {
	if len(vals) == 0 {
		return []exporter.Exporter{exporter.ImageStore{}}, nil
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
		kv, err := splitOptions("-o", v)
		if err != nil {
			return nil, err
		}
		dest := kv["dest"]
		needDest := func(what string) error {
			if dest == "" {
				return usagef("-o %s: type=%s needs dest=%s", v, kv["type"], what)
			}
			return nil
		}
		var e exporter.Exporter
		var names []string
		if n := kv["name"]; n != "" {
			if names, err = normalizeNames(v, n); err != nil {
				return nil, err
			}
		}
		insecure := kv["registry.insecure"] == "true"
		switch kv["type"] {
		case "image":
			e = exporter.ImageStore{Names: names, Push: kv["push"] == "true", Insecure: insecure}
		case "registry":
			e = exporter.Registry{Names: names, Insecure: insecure}
		case "oci":
			err = needDest("FILE")
			e = exporter.OCIArchive{Path: dest}
			if kv["tar"] == "false" {
				e = exporter.OCILayout{Dir: dest}
			}
		case "docker":
			err = needDest("FILE")
			e = exporter.DockerArchive{Path: dest}
		case "local":
			err = needDest("DIR")
			e = exporter.LocalDir{Dir: dest}
		case "tar":
			err = needDest("FILE (- for stdout)")
			e = exporter.RootfsTar{Path: dest}
		case "":
			err = usagef("-o %s: missing type=", v)
		default:
			err = usagef("-o %s: unknown output type %q (image, registry, oci, docker, local, tar)", v, kv["type"])
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// parseCacheSpecs reads --cache-from (export false) or --cache-to values
// as buildx does.
func parseCacheSpecs(vals []string, export bool) ([]builder.CacheSpec, error) {
	flag := "--cache-from"
	if export {
		flag = "--cache-to"
	}
	var out []builder.CacheSpec
	for _, v := range vals {
		if !strings.Contains(v, "=") {
			v = "type=registry,ref=" + v
		}
		kv, err := splitOptions(flag, v)
		if err != nil {
			return nil, err
		}
		spec := builder.CacheSpec{Type: kv["type"], Tag: kv["tag"], Mode: kv["mode"], Insecure: kv["registry.insecure"] == "true"}
		if b, ok := kv["ignore-error"]; ok {
			if spec.IgnoreError, err = strconv.ParseBool(b); err != nil {
				return nil, usagef("%s %s: ignore-error=%q is not a boolean", flag, v, b)
			}
		}
		switch spec.Mode {
		case "", "min", "max":
		default:
			return nil, usagef("%s %s: unknown mode %q (min, max)", flag, v, spec.Mode)
		}
		dirKey := "src"
		if export {
			dirKey = "dest"
		}
		switch spec.Type {
		case "registry":
			if kv["ref"] == "" {
				return nil, usagef("%s %s: type=registry needs ref=NAME", flag, v)
			}
			if spec.Ref, err = images.Normalize(kv["ref"]); err != nil {
				return nil, usagef("%s %s: invalid ref: %v", flag, v, err)
			}
		case "local":
			if spec.Dir = kv[dirKey]; spec.Dir == "" {
				return nil, usagef("%s %s: type=local needs %s=DIR", flag, v, dirKey)
			}
		case "inline":
			if !export {
				return nil, usagef("%s %s: an inline cache is imported with type=registry,ref=IMAGE", flag, v)
			}
			if spec.Mode == "max" {
				return nil, usagef("%s %s: an inline cache holds only the final image's steps (mode=min)", flag, v)
			}
		case "":
			return nil, usagef("%s %s: missing type=", flag, v)
		default:
			return nil, usagef("%s %s: unknown cache type %q (registry, local, inline)", flag, v, spec.Type)
		}
		out = append(out, spec)
	}
	return out, nil
}

// normalizeNames reads the name= of an output: one or several names,
// comma-separated.
func normalizeNames(output, list string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(list, ",") {
		norm, err := images.Normalize(strings.TrimSpace(n))
		if err != nil {
			return nil, usagef("-o %s: invalid name %q: %v", output, n, err)
		}
		out = append(out, norm)
	}
	return out, nil
}

// splitOptions reads the KEY=VALUE[,KEY=VALUE...] value of a flag, as
// buildx does: fields are comma-separated CSV (a value with a comma is
// quoted), keys are trimmed and lower-cased, values kept as given.
func splitOptions(flag, v string) (map[string]string, error) {
	fields, err := csvvalue.Fields(v, nil)
	if err != nil {
		return nil, usagef("%s %s: %v", flag, v, err)
	}
	kv := make(map[string]string, len(fields))
	for _, part := range fields {
		k, val, ok := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, usagef("%s %s: %q is not KEY=VALUE", flag, v, part)
		}
		kv[k] = val
	}
	return kv, nil
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
		host, ip, ok := strings.Cut(h, "=")
		if !ok {
			host, ip, ok = strings.Cut(h, ":")
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
		kv, err := splitOptions("--secret", v)
		if err != nil {
			return nil, err
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
