package dockerfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/strata-build/strata/llb"
)

// dispatchArg declares build args in a stage: a --build-arg value wins,
// then the default, then a global ARG of the same name.
func (c *converter) dispatchArg(s *stage, x *instructions.ArgCommand) error {
	commit := make([]string, 0, len(x.Args))
	for _, arg := range x.Args {
		validateNoSecretKey("ARG", arg.Key, x.Location(), c.lint)
		bv, hasValue := c.opts.BuildArgs[arg.Key]
		switch {
		case hasValue:
			arg.Value = &bv
		case arg.Value != nil:
			v, unmatched, err := c.shlex.ProcessWord(*arg.Value, s.env)
			c.reportUnmatched(s, command{Command: x}, unmatched)
			if err != nil {
				return err
			}
			arg.Value = &v
		default:
			if v, ok := c.globalArgs.Get(arg.Key); ok {
				arg.Value = &v
			}
		}
		if arg.Value != nil {
			s.env.set(arg.Key, *arg.Value)
		}
		s.buildArgs = append(s.buildArgs, arg)
		c.consumedArgs[arg.Key] = true
		str := arg.Key
		if arg.Value != nil {
			str += "=" + *arg.Value
		}
		commit = append(commit, str)
	}
	c.commitHistory(&s.img, "ARG "+strings.Join(commit, " "), false, false)
	return nil
}

func (c *converter) dispatchEnv(s *stage, x *instructions.EnvCommand) error {
	msg := "ENV"
	for _, e := range x.Env {
		if e.NoDelim {
			c.lint.Run(&linter.RuleLegacyKeyValueFormat, x.Location(), linter.RuleLegacyKeyValueFormat.Format(x.Name()))
		}
		validateNoSecretKey("ENV", e.Key, x.Location(), c.lint)
		msg += " " + e.Key + "=" + e.Value
		s.env.set(e.Key, e.Value)
		s.img.Config.Env = addEnv(s.img.Config.Env, e.Key, e.Value)
	}
	c.commitHistory(&s.img, msg, false, false)
	return nil
}

func (c *converter) dispatchLabel(s *stage, x *instructions.LabelCommand) error {
	msg := "LABEL"
	if s.img.Config.Labels == nil {
		s.img.Config.Labels = map[string]string{}
	}
	for _, l := range x.Labels {
		if l.NoDelim {
			c.lint.Run(&linter.RuleLegacyKeyValueFormat, x.Location(), linter.RuleLegacyKeyValueFormat.Format(x.Name()))
		}
		s.img.Config.Labels[l.Key] = l.Value
		msg += " " + l.Key + "=" + l.Value
	}
	c.commitHistory(&s.img, msg, false, false)
	return nil
}

// withShell prefixes a shell-form command line with SHELL (or /bin/sh -c).
func withShell(img dockerspec.DockerOCIImage, args []string) []string {
	sh := []string{"/bin/sh", "-c"}
	if len(img.Config.Shell) > 0 {
		sh = append([]string(nil), img.Config.Shell...)
	}
	return append(sh, strings.Join(args, " "))
}

func (c *converter) usedOnce(x instructions.Command, t *tracker) {
	if t.set {
		c.lint.Run(&linter.RuleMultipleInstructionsDisallowed, t.loc, linter.RuleMultipleInstructionsDisallowed.Format(x.Name()))
	}
	t.loc, t.set = x.Location(), true
}

func (c *converter) dispatchCmd(s *stage, x *instructions.CmdCommand) error {
	c.usedOnce(x, &s.cmdSet)
	args := x.CmdLine
	if x.PrependShell {
		if len(s.img.Config.Shell) == 0 {
			c.lint.Run(&linter.RuleJSONArgsRecommended, x.Location(), linter.RuleJSONArgsRecommended.Format(x.Name()))
		}
		args = withShell(s.img, args)
	}
	s.img.Config.Cmd = args
	s.img.Config.ArgsEscaped = true //nolint:staticcheck // Docker reads it for shell-form commands.
	c.commitHistory(&s.img, fmt.Sprintf("CMD %q", args), false, false)
	return nil
}

// dispatchEntrypoint sets ENTRYPOINT and drops a CMD inherited from the
// base image (a CMD set earlier in this stage stays).
func (c *converter) dispatchEntrypoint(s *stage, x *instructions.EntrypointCommand) error {
	c.usedOnce(x, &s.entrySet)
	args := x.CmdLine
	if x.PrependShell {
		if len(s.img.Config.Shell) == 0 {
			c.lint.Run(&linter.RuleJSONArgsRecommended, x.Location(), linter.RuleJSONArgsRecommended.Format(x.Name()))
		}
		args = withShell(s.img, args)
	}
	s.img.Config.Entrypoint = args
	if !s.cmdSet.set {
		s.img.Config.Cmd = nil
	}
	c.commitHistory(&s.img, fmt.Sprintf("ENTRYPOINT %q", args), false, false)
	return nil
}

func (c *converter) dispatchHealthcheck(s *stage, x *instructions.HealthCheckCommand) error {
	c.usedOnce(x, &s.healthSet)
	hc := *x.Health
	s.img.Config.Healthcheck = &hc
	c.commitHistory(&s.img, fmt.Sprintf("HEALTHCHECK %+v", hc), false, false)
	return nil
}

func (c *converter) dispatchVolume(s *stage, x *instructions.VolumeCommand) error {
	if s.img.Config.Volumes == nil {
		s.img.Config.Volumes = map[string]struct{}{}
	}
	for _, v := range x.Volumes {
		if v == "" {
			return errors.New("VOLUME specified can not be an empty string")
		}
		s.img.Config.Volumes[v] = struct{}{}
	}
	c.commitHistory(&s.img, fmt.Sprintf("VOLUME %v", x.Volumes), false, false)
	return nil
}

func (c *converter) dispatchStopSignal(s *stage, x *instructions.StopSignalCommand) error {
	if err := checkSignal(x.Signal); err != nil {
		return err
	}
	s.img.Config.StopSignal = x.Signal
	c.commitHistory(&s.img, "STOPSIGNAL "+x.Signal, false, false)
	return nil
}

var signalNames = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CLD": true, "CONT": true, "FPE": true,
	"HUP": true, "ILL": true, "INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true,
	"POLL": true, "PROF": true, "PWR": true, "QUIT": true, "SEGV": true, "STKFLT": true, "STOP": true,
	"SYS": true, "TERM": true, "TRAP": true, "TSTP": true, "TTIN": true, "TTOU": true, "URG": true,
	"USR1": true, "USR2": true, "VTALRM": true, "WINCH": true, "XCPU": true, "XFSZ": true,
}

// checkSignal accepts a signal number, a name with or without SIG, or
// RTMIN+n / RTMAX-n.
func checkSignal(sig string) error {
	if n, err := strconv.Atoi(sig); err == nil {
		if n <= 0 || n > 64 {
			return fmt.Errorf("invalid signal: %s", sig)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	if signalNames[name] {
		return nil
	}
	for _, p := range []string{"RTMIN+", "RTMAX-"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 15 {
				return nil
			}
		}
	}
	if name == "RTMIN" || name == "RTMAX" {
		return nil
	}
	return fmt.Errorf("invalid signal: %s", sig)
}

// dispatchWorkdir creates the directory (owned by USER when set) and sets
// it as the working directory of later steps and of the image.
func (c *converter) dispatchWorkdir(s *stage, x *instructions.WorkdirCommand, cmd command) error {
	if !s.workdirSet && !strings.HasPrefix(x.Path, "/") {
		c.lint.Run(&linter.RuleWorkdirRelativePath, x.Location(), linter.RuleWorkdirRelativePath.Format(x.Path))
	}
	s.workdirSet = true
	wd := normalizeWorkdir(s.dir, x.Path)
	s.dir = wd
	s.img.Config.WorkingDir = wd
	if wd == "/" {
		c.commitHistory(&s.img, "WORKDIR "+wd, false, false)
		return nil
	}
	mk := &llb.MkdirAction{Path: wd, Mode: 0o755, MakeParents: true, Timestamp: c.opts.SourceDateEpoch}
	if s.user != "" {
		mk.Chown = parseChown(s.user)
	}
	name := s.prefix(c.displayName(s, cmd), cmd.onBuild)
	s.root = &llb.Vertex{
		Op:     &llb.FileOp{Base: 0, Actions: []llb.FileAction{{Mkdir: mk}}},
		Inputs: []*llb.Vertex{s.root},
		Meta:   c.meta(s, name, x.Location(), cmd.step),
	}
	c.commitHistory(&s.img, "WORKDIR "+wd, true, false)
	return nil
}

// parseChown splits "user[:group]"; names stay names, resolved at run time.
func parseChown(s string) *llb.Chown {
	u, g, _ := strings.Cut(s, ":")
	return &llb.Chown{User: u, Group: g}
}
