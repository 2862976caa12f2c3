package dockerfile

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

// stage is one FROM block, or an image named only by COPY --from or
// RUN --mount from= (an "unregistered" stage with no commands).
type stage struct {
	index        int
	name         string // stage name, "stage-N", or "" when the Dockerfile has one stage
	st           instructions.Stage
	base         *stage // FROM an earlier stage
	unregistered bool
	deps         map[*stage]bool
	cmds         []command
	ignoreCache  bool

	resolved   bool
	dispatched bool
	onBuildSet bool
	root       *llb.Vertex
	img        dockerspec.DockerOCIImage
	platform   ocispec.Platform
	env        *envList // build env: image Env + declared ARGs
	dir        string
	user       string
	buildArgs  []instructions.KeyValuePairOptional
	cmdTotal   int
	cmdIndex   int
	workdirSet bool
	cmdSet     tracker
	entrySet   tracker
	healthSet  tracker
}

// command is an instruction with the stages it reads from.
type command struct {
	instructions.Command
	sources []*stage
	onBuild bool
	step    string // instruction index within the stage, FROM being 0; "0.k" for ONBUILD triggers
}

func (c *converter) addStage(s *stage) {
	s.index = len(c.stages)
	c.stages = append(c.stages, s)
	if b, ok := c.byName[strings.ToLower(s.st.BaseName)]; ok && !s.unregistered {
		s.base = b
	}
	if s.st.Name != "" {
		c.byName[strings.ToLower(s.st.Name)] = s
	}
}

// newStages expands every FROM against the global ARGs and records stages.
func (c *converter) newStages(stages []instructions.Stage) error {
	for i, st := range stages {
		res, err := c.shlex.ProcessWordWithMatches(st.BaseName, c.globalArgs)
		c.reportUnusedFromArgs(res.Unmatched, st.Location)
		if err != nil {
			return c.newError(err, st.Location)
		}
		if res.Result == "" {
			return c.errorf(st.Location, "base name (%s) should not be blank", st.BaseName)
		}
		st.BaseName = res.Result
		s := &stage{st: st, name: st.Name, deps: map[*stage]bool{}, platform: c.platform}
		if s.name == "" {
			s.name = fmt.Sprintf("stage-%d", i)
		}
		if st.Platform != "" {
			pres, err := c.shlex.ProcessWordWithMatches(st.Platform, c.globalArgs)
			c.reportUnusedFromArgs(pres.Unmatched, st.Location)
			if err != nil {
				return c.newError(fmt.Errorf("failed to process arguments for platform %s: %w", st.Platform, err), st.Location)
			}
			if pres.Result == "" {
				return c.errorf(st.Location, "empty platform value from expression %s", st.Platform)
			}
			p, err := parsePlatform(pres.Result)
			if err != nil {
				return c.newError(fmt.Errorf("failed to parse platform %s: %w", st.Platform, err), st.Location)
			}
			s.platform = p
		}
		s.ignoreCache = c.noCache[strings.ToLower(st.Name)]
		c.addState(s)
	}
	return nil
}

func (c *converter) addState(s *stage) {
	c.addStage(s)
	if !strings.EqualFold(s.st.BaseName, scratchName) && s.base == nil {
		s.cmdTotal = 1
	}
	for _, cmd := range s.st.Commands {
		switch cmd.(type) {
		case *instructions.AddCommand, *instructions.CopyCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
			s.cmdTotal++
		}
	}
}

// linkStages finds the stages each instruction reads from.
func (c *converter) linkStages() error {
	for _, s := range slices.Clone(c.stages) {
		for i, ic := range s.st.Commands {
			cmd, err := c.toCommand(ic)
			if err != nil {
				return c.newError(err, ic.Location())
			}
			cmd.step = strconv.Itoa(i + 1)
			s.cmds = append(s.cmds, cmd)
			for _, src := range cmd.sources {
				if src != nil {
					s.deps[src] = true
				}
			}
		}
	}
	if err := c.checkCycles(); err != nil {
		return err
	}
	if len(c.stages) == 1 {
		c.stages[0].name = ""
	}
	return nil
}

func (c *converter) toCommand(ic instructions.Command) (command, error) {
	cmd := command{Command: ic}
	switch x := ic.(type) {
	case *instructions.CopyCommand:
		if x.From == "" {
			return cmd, nil
		}
		res, err := c.shlex.ProcessWordWithMatches(x.From, shell.EnvsFromSlice(nil))
		if err != nil {
			return cmd, err
		}
		if res.Result != x.From {
			return cmd, fmt.Errorf("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
		}
		src, err := c.stageRef(x.From, x.Location())
		if err != nil {
			return cmd, err
		}
		cmd.sources = []*stage{src}
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(x) {
			if m.From == "" {
				cmd.sources = append(cmd.sources, nil)
				continue
			}
			src, err := c.stageRef(m.From, x.Location())
			if err != nil {
				return cmd, err
			}
			cmd.sources = append(cmd.sources, src)
		}
	}
	return cmd, nil
}

// stageRef finds a stage by index or name, or registers an image by name.
func (c *converter) stageRef(from string, loc []parser.Range) (*stage, error) {
	if n, err := strconv.Atoi(from); err == nil {
		if n < 0 || n >= len(c.stages) {
			return nil, fmt.Errorf("invalid stage index %d", n)
		}
		return c.stages[n], nil
	}
	if s, ok := c.byName[strings.ToLower(from)]; ok {
		return s, nil
	}
	s := &stage{st: instructions.Stage{BaseName: from, Location: loc}, unregistered: true, deps: map[*stage]bool{}, platform: c.platform}
	c.addStage(s)
	return s, nil
}

func (c *converter) checkCycles() error {
	visited := map[*stage]bool{}
	onPath := map[*stage]bool{}
	var visit func(s *stage) bool
	visit = func(s *stage) bool {
		if onPath[s] {
			return true
		}
		if visited[s] {
			return false
		}
		visited[s], onPath[s] = true, true
		for d := range s.deps {
			if visit(d) {
				return true
			}
		}
		onPath[s] = false
		return false
	}
	for _, s := range c.stages {
		if visit(s) {
			return c.errorf(s.st.Location, "circular dependency detected on stage: %s", s.name)
		}
	}
	return nil
}

// prefix names a step "[stage 2/5] RUN ..." and advances the step counter.
func (s *stage) prefix(str string, onBuild bool) string {
	if s.cmdTotal == 0 {
		return str
	}
	out := "["
	if s.name != "" {
		out += s.name + " "
	}
	s.cmdIndex++
	out += fmt.Sprintf("%*d/%d] ", int(1+math.Log10(float64(s.cmdTotal))), s.cmdIndex, s.cmdTotal)
	if onBuild {
		out += "ONBUILD "
	}
	return out + str
}

// meta describes a step's vertex.
func (c *converter) meta(s *stage, name string, loc []parser.Range, step string) llb.Meta {
	l := c.location(loc)
	m := llb.Meta{Name: name, IgnoreCache: s.ignoreCache, StepID: fmt.Sprintf("%d/%s", s.index, step)}
	if l.StartLine > 0 {
		m.Locations = []llb.Location{l}
	}
	return m
}

// tracker remembers where an instruction that should appear once was used.
type tracker struct {
	loc []parser.Range
	set bool
}
