// Package builder is strata's one entry point for a build: Build takes an
// open store and typed options, and runs Dockerfile -> frontend (op graph)
// -> solver (cached execution over the store's snapshots) -> the image in
// the store's content store -> exporters.
package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/context/ignore"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/runc"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/frontend/dockerfile"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/remotecache"
	"github.com/strata-build/strata/solver"
	"github.com/strata-build/strata/solver/ops"
	"github.com/strata-build/strata/store"
)

// Options is one build.
type Options struct {
	// ContextDir is the build context.
	ContextDir string
	// Dockerfile is the Dockerfile's path; "" means ContextDir/Dockerfile.
	// DockerfileData, when set, is used instead of reading it (-f -).
	Dockerfile     string
	DockerfileData []byte
	Tags           []string
	BuildArgs      map[string]string
	Labels         map[string]string
	Target         string
	NoCache        bool
	NoCacheFilter  []string
	Jobs           int
	Platform       ocispec.Platform
	// Exports receive the image; the image store is one of them when Tags
	// should be kept in the store.
	Exports  []exporter.Exporter
	Progress progress.Sink
	// Warnings receives the Dockerfile linter's warnings, if set.
	Warnings io.Writer
	// CheckOnly stops once the Dockerfile is converted and linted
	// (strata build --check): nothing is built or exported.
	CheckOnly bool
	// Pull re-resolves every base image against its registry (--pull): a
	// new digest under the tag replaces the local one. Without it, only
	// images missing from the local store are pulled.
	Pull bool
	// Secrets are the values of RUN --mount=type=secret by id. They reach
	// the steps only, never a cache key, a layer, the history or progress.
	Secrets map[string][]byte
	// SSH maps the ids of RUN --mount=type=ssh to agent sockets.
	SSH map[string]string
	// Network is the network of RUN steps without --network.
	Network llb.NetMode
	// ExtraHosts are added to /etc/hosts in every RUN step (--add-host).
	ExtraHosts []executor.HostIP
	// AllowInsecure permits RUN --security=insecure (--allow security.insecure).
	AllowInsecure bool
	// Registry is how base images are pulled and outputs pushed: the hosts'
	// trust and credentials. Its Progress and Sources are the build's.
	Registry registry.Options
	// CacheFrom are caches to import before the build (--cache-from),
	// CacheTo where to export the build's cache after it (--cache-to).
	CacheFrom, CacheTo []CacheSpec
	// Compression is how the layers this build makes are stored (gzip by
	// default; zstd, uncompressed); layers that have a blob (a base
	// image's, a cached step's) keep theirs unless ForceCompression, as
	// buildx's compression= and force-compression= of an output.
	Compression      Compression
	ForceCompression bool
	// Runtime is what runs RUN steps: "" or "sandbox" (the built-in
	// sandbox) or "runc".
	Runtime string
	// OnRunError, when set, is called for the first RUN step of the build
	// whose command exits non-zero, while the step's root filesystem (as
	// the command left it, never committed) and mounts are still in place
	// (strata build --on-error=shell opens a shell there). The build then
	// fails with the step's error as usual. A step that fails meanwhile
	// waits for it to return. It gets the build's context, which the
	// failure of another step does not cancel.
	OnRunError func(ctx context.Context, f *FailedRun)
}

// Validate checks the options that need no store and no Dockerfile, so a
// bad one fails before any work: the names, the runtime and the network.
// Build calls it first; a command line calls it to tell a usage error.
func (o Options) Validate() error {
	for _, t := range o.Tags {
		if _, err := images.Normalize(t); err != nil {
			return fmt.Errorf("invalid tag %q: %w", t, err)
		}
	}
	switch o.Runtime {
	case "", "sandbox", "runc":
	default:
		return fmt.Errorf("unknown runtime %q (sandbox, runc)", o.Runtime)
	}
	for _, h := range o.ExtraHosts {
		if h.Host == "" || net.ParseIP(h.IP) == nil {
			return fmt.Errorf("invalid extra host %s:%s", h.Host, h.IP)
		}
	}
	return o.Compression.Validate()
}

// Result is what a build made.
type Result struct {
	Manifest ocispec.Descriptor
	Config   digest.Digest
	// Warnings are the Dockerfile linter's findings.
	Warnings []dockerfile.Warning
	// UnusedArgs are the BuildArgs no ARG of the stages built consumed.
	UnusedArgs []dockerfile.UnusedArg
	Reports    []exporter.Report
	// Steps says, per step, whether it ran or hit the cache, and why it missed.
	Steps []Step
}

// Compression is a layer compression and level (see Options.Compression).
type Compression = layer.Compression

// FailedRun is a RUN step whose command failed, its root filesystem and
// mounts still in place (Options.OnRunError): what a debugging shell needs.
type FailedRun = ops.FailedRun

// Build runs one build on an open store: the Dockerfile is converted into
// an op graph, the solver runs what the cache lacks, the result becomes an
// image in the store's content store, and each of opts.Exports receives it.
// A build that fails once its Dockerfile is converted returns a Result
// too, with the Warnings, UnusedArgs and Steps so far, and the error.
func Build(ctx context.Context, st *store.Store, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(opts.Tags))
	for _, t := range opts.Tags {
		n, _ := images.Normalize(t) // checked by Validate
		names = append(names, n)
	}
	parts := st.Parts()
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	steps := newStepRecorder(opts.Progress)
	opts.Progress = steps
	if opts.Platform.OS == "" {
		opts.Platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	ropts := opts.Registry
	ropts.Progress, ropts.Sources = opts.Progress, parts.Sources
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return nil, err
	}
	dfPath := opts.Dockerfile
	if dfPath == "" {
		dfPath = filepath.Join(ctxDir, "Dockerfile")
	}
	data := opts.DockerfileData
	if data == nil {
		if data, err = os.ReadFile(dfPath); err != nil {
			return nil, fmt.Errorf("read Dockerfile: %w", err)
		}
	}
	epoch, err := sourceDateEpoch(opts)
	if err != nil {
		return nil, err
	}
	excludes, err := ignore.ReadFile(ctxDir, dfPath)
	if err != nil {
		return nil, err
	}
	warn := opts.Warnings
	if warn == nil {
		warn = io.Discard
	}
	// Where the layers the build has not downloaded live: the imported
	// caches' and the base images' (added as they are resolved).
	lazy := remotecache.NewBlobs()
	var remote *remotecache.Index
	if !opts.CheckOnly && len(opts.CacheFrom) > 0 {
		remote = importCaches(ctx, opts.CacheFrom, ropts, opts.Progress, warn)
		lazy.AddIndex(remote)
	}
	rsv := &resolver{st: st, pull: opts.Pull, registry: ropts, blobs: lazy}
	convStart := time.Now()
	conv, err := dockerfile.Convert(ctx, dockerfile.Options{
		Dockerfile:      data,
		Filename:        filepath.Base(dfPath),
		Target:          opts.Target,
		BuildArgs:       opts.BuildArgs,
		Labels:          opts.Labels,
		Platform:        opts.Platform,
		Resolver:        rsv,
		ContextExcludes: excludes,
		NoCacheFilter:   opts.NoCacheFilter,
		SourceDateEpoch: epoch,
		Network:         opts.Network,
		ExtraHosts:      extraHosts(opts.ExtraHosts),
	})
	phase(opts.Progress, "convert Dockerfile", convStart, 0, err)
	if err != nil {
		return nil, err
	}
	if opts.Warnings != nil {
		for _, w := range conv.Warnings {
			fmt.Fprintf(opts.Warnings, "WARNING: %s - %s: %s\n", w.RuleName, w.Location, w.Detail)
		}
		for _, u := range conv.UnusedArgs {
			fmt.Fprintf(opts.Warnings, "WARNING: %s\n", u)
		}
	}
	res := &Result{Warnings: conv.Warnings, UnusedArgs: conv.UnusedArgs}
	if opts.CheckOnly {
		return res, nil
	}
	fail := func(err error) (*Result, error) {
		res.Steps = steps.list()
		return res, err
	}
	ref := &ops.Ref{}
	var cs *ops.CacheStore
	if conv.Root != nil {
		if os.Geteuid() != 0 {
			return fail(ErrNeedsRoot)
		}
		def, err := llb.NewDefinition(conv.Root)
		if err != nil {
			return fail(err)
		}
		if err := checkInsecure(def, opts); err != nil {
			return fail(withSource(err, data))
		}
		scopeSteps(def, ctxDir, dfPath)
		solveStart := time.Now()
		ref, cs, err = solve(ctx, parts, def, ctxDir, remote, lazy, opts)
		phase(opts.Progress, "solve", solveStart, 0, err)
		if err != nil {
			return fail(withSource(err, data))
		}
	}
	layers := &cache.Layers{Snapshotter: parts.Snapshotter, Content: parts.Content, Records: parts.Records, TempDir: parts.TempDir,
		Compression: opts.Compression, ForceCompression: opts.ForceCompression}
	chains := newLayerChains(layers, epoch)
	writeStart := time.Now()
	desc, cfg, imgLayers, err := writeImage(ctx, chains, parts, cs, ref, remote, conv, epoch, opts.CacheTo)
	phase(opts.Progress, "write image", writeStart, 0, err)
	if err != nil {
		return fail(err)
	}
	res.Manifest, res.Config, res.Steps = desc, cfg, steps.list()
	// A push fetches what the registry must be sent; every other output
	// reads the layers' bytes from the store.
	if slices.ContainsFunc(opts.Exports, func(e exporter.Exporter) bool { _, push := e.(exporter.Registry); return !push }) {
		if err := fetchLayers(ctx, parts, lazy, imgLayers); err != nil {
			return fail(fmt.Errorf("export: %w", err))
		}
	}
	src := exporter.Source{Content: parts.Content, Images: parts.Images, Registry: ropts, Manifest: desc, Names: names, Fetch: lazy.FetchOne(parts.Content)}
	for _, e := range opts.Exports {
		exportStart := time.Now()
		done := exportStep(opts.Progress, e, exportStart)
		rep, err := e.Export(ctx, src)
		done(rep.Size, err)
		phase(opts.Progress, exportName(e), exportStart, rep.Size, err)
		if err != nil {
			return fail(fmt.Errorf("export: %w", err))
		}
		res.Reports = append(res.Reports, rep)
	}
	if cs != nil {
		if err := exportCaches(ctx, parts, chains, opts.CacheTo, cs, ref, remote, lazy, ropts, opts.Progress, warn); err != nil {
			return fail(err)
		}
	}
	if err := rsv.tagFetched(ctx, opts.Platform); err != nil {
		return fail(err)
	}
	return res, nil
}

// writeImage makes the image of the build's result in the content store,
// with an inline cache if one of cacheTo asks for it, and returns its
// manifest, its config's digest and its layers (whose blobs the store may
// lack: see layerChains.result).
func writeImage(ctx context.Context, chains *layerChains, parts store.Parts, cs *ops.CacheStore, ref *ops.Ref, remote *remotecache.Index, conv *dockerfile.Result, epoch *time.Time, cacheTo []CacheSpec) (ocispec.Descriptor, digest.Digest, []cache.Layer, error) {
	var inline map[string]json.RawMessage
	if cs != nil && slices.ContainsFunc(cacheTo, func(c CacheSpec) bool { return c.Type == "inline" }) {
		var err error
		if inline, err = inlineCache(ctx, chains, cs, ref, remote); err != nil {
			return ocispec.Descriptor{}, "", nil, fmt.Errorf("inline cache: %w", err)
		}
	}
	layers, _, err := chains.result(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, "", nil, fmt.Errorf("export image: %w", err)
	}
	desc, cfg, err := exporter.WriteImage(ctx, parts.Content, layers, conv.DockerImage(), epoch, inline)
	if err != nil {
		return ocispec.Descriptor{}, "", nil, fmt.Errorf("export image: %w", err)
	}
	return desc, cfg, layers, nil
}

// phase reports to sink, if it takes phases, the phase name that began at
// start and ends now, having written n bytes, with its error.
func phase(sink progress.Sink, name string, start time.Time, n int64, err error) {
	p := progress.Phase{Name: name, Start: start, End: time.Now(), Bytes: n}
	if err != nil {
		p.Err = err.Error()
	}
	progress.ReportPhase(sink, p)
}

// exportStep shows an export to a file or directory as a step of the
// progress ("exporting to oci archive out.tar", with the bytes written
// when it ends); a push shows its own, and a tag in the store is no step.
// It returns the function that ends the step.
func exportStep(sink progress.Sink, e exporter.Exporter, start time.Time) func(n int64, err error) {
	switch e.(type) {
	case exporter.Registry, exporter.ImageStore:
		return func(int64, error) {}
	}
	name := strings.Replace(exportName(e), "export to", "exporting to", 1)
	v := digest.FromString(fmt.Sprintf("%s %d", name, start.UnixNano()))
	sink.Emit(progress.Event{Vertex: v, Name: name, Status: progress.Started, Time: start})
	return func(n int64, err error) {
		ev := progress.Event{Vertex: v, Name: name, Status: progress.Done, Time: time.Now(), Bytes: n}
		if err != nil {
			ev.Status, ev.Err = progress.Error, err.Error()
		}
		sink.Emit(ev)
	}
}

// exportName names the phase of an export.
func exportName(e exporter.Exporter) string {
	switch e := e.(type) {
	case exporter.ImageStore:
		if e.Push {
			return "export to the image store and push"
		}
		return "export to the image store"
	case exporter.Registry:
		return "export to registry"
	case exporter.OCIArchive:
		return "export to oci archive " + e.Path
	case exporter.OCILayout:
		return "export to oci layout " + e.Dir
	case exporter.DockerArchive:
		return "export to docker archive " + e.Path
	case exporter.LocalDir:
		return "export to directory " + e.Dir
	case exporter.RootfsTar:
		return "export to tar " + e.Path
	}
	return fmt.Sprintf("export %T", e)
}

// fetchLayers stores the blobs of layers that the store lacks, from where
// lazy says they are.
func fetchLayers(ctx context.Context, parts store.Parts, lazy *remotecache.Blobs, layers []cache.Layer) error {
	var blobs []ocispec.Descriptor
	for _, l := range layers {
		if !l.Empty {
			blobs = append(blobs, l.Blob)
		}
	}
	return lazy.Fetch(ctx, parts.Content, blobs, nil)
}

func solve(ctx context.Context, parts store.Parts, def *llb.Definition, ctxDir string, remote *remotecache.Index, lazy *remotecache.Blobs, opts Options) (*ops.Ref, *ops.CacheStore, error) {
	exec, err := runtimeFor(opts.Runtime, parts)
	if err != nil {
		return nil, nil, err
	}
	w := &ops.Worker{
		Snapshotter:   parts.Snapshotter,
		Content:       parts.Content,
		Records:       parts.Records,
		Executor:      exec,
		Checksums:     parts.Checksums,
		TempDir:       parts.TempDir,
		CacheMountDir: parts.CacheMountDir,
		ContextDir:    ctxDir,
		Progress:      opts.Progress,
		Secrets:       opts.Secrets,
		SSH:           opts.SSH,
		AllowInsecure: opts.AllowInsecure,
		Blobs:         lazy,
	}
	if opts.OnRunError != nil {
		var mu sync.Mutex
		called := false
		w.OnRunError = func(_ context.Context, f *ops.FailedRun) {
			mu.Lock()
			defer mu.Unlock()
			if !called {
				called = true
				opts.OnRunError(ctx, f)
			}
		}
	}
	cs := &ops.CacheStore{Records: parts.Records, Snapshotter: parts.Snapshotter, Worker: w}
	if remote != nil && remote.Len() > 0 {
		cs.Remote = remote
	}
	sv := solver.New(solver.Options{
		Resolve:  w.Resolve,
		Cache:    cs,
		Jobs:     jobs(opts.Jobs),
		Progress: opts.Progress,
		NoCache:  opts.NoCache,
	})
	r, err := sv.Solve(ctx, def.Root)
	if ferr := cs.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, nil, err
	}
	if err := parts.Checksums.Save(); err != nil {
		return nil, nil, err
	}
	return r.(*ops.Ref), cs, nil
}

// runtimeFor is the executor of RUN steps: the store's sandbox, or runc
// with its state in the store's temp dir.
func runtimeFor(name string, parts store.Parts) (executor.Executor, error) {
	if name != "runc" {
		return parts.Executor, nil
	}
	rt, err := runc.New(runc.Options{StateDir: filepath.Join(parts.TempDir, "runc")})
	if err != nil {
		return nil, fmt.Errorf("runtime runc: %w", err)
	}
	return rt, nil
}

// jobs is the number of steps run at once: n, or by default twice the CPUs
// and at least 4. RUN steps mostly wait (on processes, disks, networks), so
// a CPU count alone would serialize independent stages on small machines.
func jobs(n int) int {
	if n > 0 {
		return n
	}
	return max(4, 2*runtime.NumCPU())
}

// scopeSteps prefixes step IDs with the build's identity (context and
// Dockerfile), so miss explanations compare a step with its own history.
func scopeSteps(def *llb.Definition, ctxDir, dfPath string) {
	abs, _ := filepath.Abs(dfPath)
	scope := digest.FromString(ctxDir + "\x00" + abs).Encoded()[:16]
	for _, v := range def.Vertices {
		if v.Meta.StepID != "" {
			v.Meta.StepID = scope + "/" + v.Meta.StepID
		}
	}
}

// ErrNeedsRoot is the error of a build run by another user than root.
var ErrNeedsRoot = errors.New("building needs root (overlay mounts, namespaces for RUN); rootless builds are not supported yet")

// BuildError is a failed step, with where it came from in the Dockerfile.
type BuildError struct {
	Location llb.Location
	Lines    []string // the source lines of Location
	Err      error
}

func (e *BuildError) Error() string {
	return dockerfile.Excerpt(e.Location, e.Lines) + "\n" + e.Err.Error()
}

func (e *BuildError) Unwrap() error { return e.Err }

// withSource attaches the Dockerfile lines of a failed vertex to err.
func withSource(err error, dockerfile []byte) error {
	var ve *solver.VertexError
	if !errors.As(err, &ve) || len(ve.Vertex.Meta.Locations) == 0 {
		return err
	}
	loc := ve.Vertex.Meta.Locations[0]
	lines := strings.Split(string(dockerfile), "\n")
	var src []string
	for i := loc.StartLine; i <= loc.EndLine && i-1 < len(lines) && i >= 1; i++ {
		src = append(src, lines[i-1])
	}
	return &BuildError{Location: loc, Lines: src, Err: fmt.Errorf("failed to solve: %w", ve.Err)}
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH from the build args (as BuildKit
// does): seconds since the Unix epoch.
func sourceDateEpoch(opts Options) (*time.Time, error) {
	v, ok := opts.BuildArgs["SOURCE_DATE_EPOCH"]
	if !ok || v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// extraHosts writes --add-host entries as the frontend takes them, "name=ip".
func extraHosts(hs []executor.HostIP) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Host+"="+h.IP)
	}
	return out
}

// checkInsecure refuses RUN --security=insecure unless the build allows it.
func checkInsecure(def *llb.Definition, opts Options) error {
	if opts.AllowInsecure {
		return nil
	}
	for _, v := range def.Vertices {
		if e, ok := v.Op.(*llb.ExecOp); ok && e.Security == llb.SecurityInsecure {
			return &solver.VertexError{Vertex: v, Err: errors.New("RUN --security=insecure is not allowed: the build needs --allow security.insecure")}
		}
	}
	return nil
}
