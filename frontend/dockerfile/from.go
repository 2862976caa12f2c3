package dockerfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

// resolveReachable resolves the base images of the stages t reaches, then
// adds ONBUILD triggers inherited from bases, repeating while triggers add
// new dependencies.
func (c *converter) resolveReachable(ctx context.Context, t *stage) error {
	for {
		reach := reachable(t)
		for _, s := range c.stages {
			if !reach[s] || s.resolved || s.base != nil {
				continue
			}
			if err := c.resolveBase(ctx, s); err != nil {
				return err
			}
		}
		newDeps := false
		for _, s := range c.stages {
			if !reach[s] || s.onBuildSet {
				continue
			}
			s.onBuildSet = true
			added, err := c.addOnBuildTriggers(s)
			if err != nil {
				return err
			}
			newDeps = newDeps || added
		}
		if !newDeps {
			return nil
		}
		if err := c.checkCycles(); err != nil {
			return err
		}
	}
}

// resolveBase sets a stage's root and config from scratch or an image.
func (c *converter) resolveBase(ctx context.Context, s *stage) error {
	s.resolved = true
	s.dispatched = s.unregistered
	if strings.EqualFold(s.st.BaseName, scratchName) {
		s.img = emptyImage(s.platform)
		return nil
	}
	ref := s.st.BaseName
	if _, err := name.ParseReference(ref); err != nil {
		return c.errorf(s.st.Location, "failed to parse stage name %q: %v%s", ref, err, c.stageSuggestion(s, ref))
	}
	if c.opts.Resolver == nil {
		return c.errorf(s.st.Location, "%s: no image resolver configured", ref)
	}
	ri, err := c.resolve(ctx, ref, s.platform)
	if err != nil {
		return c.newError(fmt.Errorf("%s: %w%s", ref, err, c.stageSuggestion(s, ref)), s.st.Location)
	}
	img := dockerspec.DockerOCIImage{Image: ri.Config}
	img.Config.ImageConfig = ri.Config.Config
	if len(ri.ConfigJSON) > 0 {
		var full dockerspec.DockerOCIImage
		if err := json.Unmarshal(ri.ConfigJSON, &full); err != nil {
			return c.errorf(s.st.Location, "%s: failed to parse image config: %v", ref, err)
		}
		img.Config.DockerOCIImageConfigExt = full.Config.DockerOCIImageConfigExt
	}
	img = cloneImage(img)
	img.Created = nil
	img.Image.Config = ocispec.ImageConfig{}
	s.img = img
	if !s.unregistered && (img.OS != s.platform.OS || img.Architecture != s.platform.Architecture) && img.OS != "" {
		msg := linter.RuleInvalidBaseImagePlatform.Format(s.st.BaseName, formatPlatform(s.platform), img.OS+"/"+img.Architecture)
		c.lint.Run(&linter.RuleInvalidBaseImagePlatform, s.st.Location, msg)
	}
	if isEmptyImage(img) {
		return nil
	}
	fromName := ri.Ref
	if ri.Digest != "" && !strings.Contains(fromName, "@") {
		fromName += "@" + ri.Digest.String()
	}
	p := s.platform
	s.root = &llb.Vertex{
		Op:   &llb.SourceOp{Source: llb.SourceImage, Ref: ri.Ref, Digest: ri.Digest, Platform: &p},
		Meta: c.meta(s, s.prefix("FROM "+fromName, false), s.st.Location, "0"),
	}
	return nil
}

func (c *converter) resolve(ctx context.Context, ref string, p ocispec.Platform) (ResolvedImage, error) {
	key := ref + " " + formatPlatform(p)
	if ri, ok := c.resolved[key]; ok {
		return ri, nil
	}
	ri, err := c.opts.Resolver.ResolveImage(ctx, ref, p)
	if err != nil {
		return ResolvedImage{}, err
	}
	if ri.Ref == "" {
		return ResolvedImage{}, errors.New("resolver returned an empty ref")
	}
	c.resolved[key] = ri
	return ri, nil
}

// isEmptyImage reports an image with no layers: its rootfs is scratch.
func isEmptyImage(img dockerspec.DockerOCIImage) bool {
	if len(img.RootFS.DiffIDs) > 0 {
		return false
	}
	for _, h := range img.History {
		if !h.EmptyLayer {
			return false
		}
	}
	return true
}

func emptyImage(p ocispec.Platform) dockerspec.DockerOCIImage {
	var img dockerspec.DockerOCIImage
	img.OS, img.Architecture, img.Variant = p.OS, p.Architecture, p.Variant
	img.RootFS.Type = "layers"
	img.Config.WorkingDir = "/"
	img.Config.Env = []string{"PATH=" + defaultPathEnv}
	return img
}

func cloneImage(src dockerspec.DockerOCIImage) dockerspec.DockerOCIImage {
	img := src
	img.Config.Env = slices.Clone(src.Config.Env)
	img.Config.Cmd = slices.Clone(src.Config.Cmd)
	img.Config.Entrypoint = slices.Clone(src.Config.Entrypoint)
	img.Config.OnBuild = slices.Clone(src.Config.OnBuild)
	img.Config.Shell = slices.Clone(src.Config.Shell)
	img.Config.ExposedPorts = cloneMap(src.Config.ExposedPorts)
	img.Config.Volumes = cloneMap(src.Config.Volumes)
	img.Config.Labels = cloneMap(src.Config.Labels)
	if src.Config.Healthcheck != nil {
		hc := *src.Config.Healthcheck
		hc.Test = slices.Clone(hc.Test)
		img.Config.Healthcheck = &hc
	}
	img.RootFS.DiffIDs = slices.Clone(src.RootFS.DiffIDs)
	img.History = slices.Clone(src.History)
	return img
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// addOnBuildTriggers prepends the ONBUILD instructions of a stage's base
// (an image's config or an earlier stage's ONBUILD lines). It reports
// whether they read from stages not seen before.
func (c *converter) addOnBuildTriggers(s *stage) (bool, error) {
	var triggers []string
	if s.base != nil {
		for _, cmd := range s.base.cmds {
			if ob, ok := cmd.Command.(*instructions.OnbuildCommand); ok {
				triggers = append(triggers, ob.Expression)
			}
		}
	} else {
		triggers = s.img.Config.OnBuild
		s.img.Config.OnBuild = nil
	}
	if len(triggers) == 0 {
		return false, nil
	}
	var cmds []command
	added := false
	for i, trig := range triggers {
		res, err := parser.Parse(strings.NewReader(trig))
		if err != nil {
			return false, c.newError(err, s.st.Location)
		}
		if len(res.AST.Children) != 1 {
			return false, c.errorf(s.st.Location, "onbuild trigger should be a single expression")
		}
		node := res.AST.Children[0]
		node.StartLine, node.EndLine = c.location(s.st.Location).StartLine, c.location(s.st.Location).EndLine
		ic, err := instructions.ParseCommand(node)
		if err != nil {
			return false, c.newError(err, s.st.Location)
		}
		cmd, err := c.toCommand(ic)
		if err != nil {
			return false, c.newError(err, s.st.Location)
		}
		cmd.onBuild = true
		cmd.step = fmt.Sprintf("0.%d", i+1)
		for _, src := range cmd.sources {
			if src != nil && !s.deps[src] {
				s.deps[src] = true
				added = true
			}
		}
		cmds = append(cmds, cmd)
		switch ic.(type) {
		case *instructions.AddCommand, *instructions.CopyCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
			s.cmdTotal++
		}
	}
	s.cmds = append(cmds, s.cmds...)
	return added, nil
}

// initStage gives a stage its starting root, config and build env.
func (c *converter) initStage(s *stage) {
	if s.base != nil {
		b := s.base
		s.root = b.root
		s.platform = b.platform
		s.img = cloneImage(b.img)
		s.img.Config.OnBuild = nil
		s.env = b.env.clone()
		s.dir, s.user = b.dir, b.user
		s.workdirSet = b.workdirSet
		s.buildArgs = slices.Clone(b.buildArgs)
		return
	}
	if _, ok := envFromSlice(s.img.Config.Env).Get("PATH"); !ok {
		s.img.Config.Env = append(s.img.Config.Env, "PATH="+defaultPathEnv)
	}
	s.env = envFromSlice(s.img.Config.Env)
	s.dir = "/"
	if wd := s.img.Config.WorkingDir; wd != "" {
		s.dir = normalizeWorkdir("/", wd)
		s.img.Config.WorkingDir = s.dir
	}
	s.user = s.img.Config.User
}
