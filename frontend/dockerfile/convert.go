package dockerfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

// ImageResolver finds base images; it is the only effect of a conversion.
type ImageResolver interface {
	// ResolveImage returns the normalized ref ("docker.io/library/busybox:latest"), the manifest digest
	// and the config of an image for a platform.
	ResolveImage(ctx context.Context, ref string, platform ocispec.Platform) (ResolvedImage, error)
}

// ResolvedImage is what an ImageResolver knows about one image.
type ResolvedImage struct {
	Ref    string
	Digest digest.Digest
	Config ocispec.Image
	// ConfigJSON, when set, is the raw config blob; the Docker extensions
	// ocispec.Image has no fields for (Healthcheck, Shell, OnBuild) are read
	// from it.
	ConfigJSON []byte
}

// Options says what to convert and how.
type Options struct {
	Dockerfile      []byte
	Filename        string            // for errors, e.g. "Dockerfile"
	Target          string            // stage name; "" = last
	BuildArgs       map[string]string // --build-arg
	Labels          map[string]string // --label, applied to the final image
	Platform        ocispec.Platform  // target platform (build platform = same for now)
	Resolver        ImageResolver
	ContextExcludes []string // .dockerignore patterns, copied into the local SourceOp
	NoCacheFilter   []string // stage names whose vertices get Meta.IgnoreCache
	SourceDateEpoch *time.Time
	// Network is the network of RUN steps without --network (or with
	// --network=default): llb.NetDefault, llb.NetNone or llb.NetHost.
	Network llb.NetMode
	// ExtraHosts are "name=ip" entries (--add-host) added, in this order,
	// to the /etc/hosts of every RUN step.
	ExtraHosts []string
}

// Result is the converted target stage.
type Result struct {
	// Root is the target's filesystem; nil is scratch.
	Root *llb.Vertex
	// Image is the config template of the target: Config, OS/Arch,
	// RootFS.DiffIDs of the base image, and History: the base image's plus
	// one entry per instruction, EmptyLayer false for RUN/COPY/ADD/WORKDIR.
	Image ocispec.Image
	// ConfigExt holds the Docker config fields ocispec.Image lacks
	// (Healthcheck, Shell, OnBuild).
	ConfigExt dockerspec.DockerOCIImageConfigExt
	// Warnings are the linter's findings, in the order they were made.
	Warnings []Warning
	// UnusedArgs are the BuildArgs that no ARG consumed, sorted by name.
	UnusedArgs []UnusedArg
}

// DockerImage returns Image and ConfigExt merged into one Docker config.
func (r *Result) DockerImage() dockerspec.DockerOCIImage {
	img := dockerspec.DockerOCIImage{Image: r.Image}
	img.Config.ImageConfig = r.Image.Config
	img.Config.DockerOCIImageConfigExt = r.ConfigExt
	return img
}

// Warning is one linter finding.
type Warning struct {
	RuleName string
	Detail   string
	Location llb.Location
	URL      string
}

// String prints the warning as docker build does:
// "JSONArgsRecommended: JSON arguments recommended for CMD ... (Dockerfile:3)".
func (w Warning) String() string {
	return fmt.Sprintf("%s: %s (%s)", w.RuleName, w.Detail, w.Location)
}

const (
	historyComment = "buildkit.dockerfile.v0"
	scratchName    = "scratch"
)

// converter holds one conversion's state.
type converter struct {
	opts       Options
	lines      []string
	platform   ocispec.Platform
	shlex      *shell.Lex
	lint       *linter.Linter
	warnings   []Warning
	globalArgs *envList
	metaArgs   map[string]bool // global ARG names, for the UndefinedArgInFrom rule
	// consumedArgs are the names ARGs of the dispatched stages declared.
	consumedArgs map[string]bool
	stages       []*stage // Dockerfile stages, then images named by --from
	byName       map[string]*stage
	resolved     map[string]ResolvedImage
	ctxVertex    *llb.Vertex
	noCache      map[string]bool
}

// Convert turns opts.Dockerfile into the graph and config template of the
// target stage.
func Convert(ctx context.Context, opts Options) (*Result, error) {
	if opts.Filename == "" {
		opts.Filename = "Dockerfile"
	}
	if err := checkRunOptions(opts); err != nil {
		return nil, err
	}
	c := &converter{
		opts:         opts,
		lines:        strings.Split(string(opts.Dockerfile), "\n"),
		platform:     normalizePlatform(opts.Platform),
		byName:       map[string]*stage{},
		resolved:     map[string]ResolvedImage{},
		consumedArgs: map[string]bool{},
		noCache:      map[string]bool{},
	}
	for _, n := range opts.NoCacheFilter {
		c.noCache[strings.ToLower(n)] = true
	}
	res, err := c.convert(ctx)
	if err != nil {
		return nil, c.newError(err, nil)
	}
	return res, nil
}

// checkRunOptions rejects a Network or an ExtraHosts entry the executor
// would not understand, before they enter any digest.
func checkRunOptions(opts Options) error {
	switch opts.Network {
	case llb.NetDefault, llb.NetNone, llb.NetHost:
	default:
		return fmt.Errorf("unsupported network mode %q", opts.Network)
	}
	for _, h := range opts.ExtraHosts {
		if name, ip, ok := strings.Cut(h, "="); !ok || name == "" || ip == "" {
			return fmt.Errorf("invalid extra host %q: want name=ip", h)
		}
	}
	return nil
}

func (c *converter) convert(ctx context.Context) (*Result, error) {
	if len(bytes.TrimSpace(c.opts.Dockerfile)) == 0 {
		return nil, errors.New("the Dockerfile cannot be empty")
	}
	if err := c.checkSyntax(); err != nil {
		return nil, err
	}
	if err := c.newLinter(); err != nil {
		return nil, err
	}
	ast, err := parser.Parse(bytes.NewReader(c.opts.Dockerfile))
	if err != nil {
		return nil, err
	}
	for _, w := range ast.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			c.lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	c.shlex = shell.NewLex(ast.EscapeToken)
	stages, metaArgs, err := instructions.Parse(ast.AST, c.lint)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, errors.New("dockerfile contains no stages to build")
	}
	validateStageNames(stages, c.lint)
	validateCommandCasing(stages, c.lint)

	target := c.opts.Target
	if target == "" {
		target = stages[len(stages)-1].Name
	}
	if err := c.evalMetaArgs(metaArgs, target); err != nil {
		return nil, err
	}
	if err := c.newStages(stages); err != nil {
		return nil, err
	}
	t, err := c.target()
	if err != nil {
		return nil, err
	}
	if err := c.linkStages(); err != nil {
		return nil, err
	}
	if err := c.resolveReachable(ctx, t); err != nil {
		return nil, err
	}
	if err := c.dispatchReachable(t); err != nil {
		return nil, err
	}
	if err := c.lintError(); err != nil {
		return nil, err
	}
	return c.result(t), nil
}

// evalMetaArgs evaluates the ARGs before the first FROM over the automatic
// platform args and --build-arg values.
func (c *converter) evalMetaArgs(metaArgs []instructions.ArgCommand, target string) error {
	c.globalArgs = defaultArgs(c.platform, c.opts.BuildArgs, target)
	c.metaArgs = map[string]bool{}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			c.metaArgs[kv.Key] = true
			validateNoSecretKey("ARG", kv.Key, cmd.Location(), c.lint)
			if v, ok := c.opts.BuildArgs[kv.Key]; ok {
				c.globalArgs.set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := c.shlex.ProcessWord(*kv.Value, c.globalArgs)
			if err != nil {
				return c.newError(err, cmd.Location())
			}
			c.globalArgs.set(kv.Key, v)
		}
	}
	return nil
}

func (c *converter) target() (*stage, error) {
	if c.opts.Target == "" {
		return c.stages[len(c.stages)-1], nil
	}
	s, ok := c.byName[strings.ToLower(c.opts.Target)]
	if !ok {
		return nil, c.targetError()
	}
	return s, nil
}

// reachable returns the stages t depends on, t included.
func reachable(t *stage) map[*stage]bool {
	seen := map[*stage]bool{}
	var walk func(s *stage)
	walk = func(s *stage) {
		if seen[s] {
			return
		}
		seen[s] = true
		if s.base != nil {
			walk(s.base)
		}
		for d := range s.deps {
			walk(d)
		}
	}
	walk(t)
	return seen
}

// dispatchReachable converts the reachable stages in Dockerfile order.
func (c *converter) dispatchReachable(t *stage) error {
	reach := reachable(t)
	for _, s := range c.stages {
		if !reach[s] || s.dispatched {
			continue
		}
		if err := c.dispatchStage(s); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) result(t *stage) *Result {
	img := t.img
	if len(c.opts.Labels) > 0 {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		maps.Copy(img.Config.Labels, c.opts.Labels)
	}
	img.OS = c.platform.OS
	img.Architecture = c.platform.Architecture
	img.Variant = c.platform.Variant
	if img.RootFS.Type == "" {
		img.RootFS.Type = "layers"
	}
	out := img.Image
	out.Config = img.Config.ImageConfig
	return &Result{
		Root:       t.root,
		Image:      out,
		ConfigExt:  img.Config.DockerOCIImageConfigExt,
		Warnings:   c.warnings,
		UnusedArgs: c.unusedArgs(),
	}
}

// commitHistory appends one history entry to img.
func (c *converter) commitHistory(img *dockerspec.DockerOCIImage, msg string, withLayer, buildkit bool) {
	if buildkit {
		msg += " # buildkit"
	}
	img.History = append(img.History, ocispec.History{
		Created:    c.opts.SourceDateEpoch,
		CreatedBy:  msg,
		Comment:    historyComment,
		EmptyLayer: !withLayer,
	})
}
