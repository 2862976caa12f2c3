package dockerfile

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dispatchStage converts the instructions of one stage in order.
func (c *converter) dispatchStage(s *stage) error {
	s.dispatched = true
	if s.unregistered {
		return nil
	}
	c.initStage(s)
	for _, cmd := range s.cmds {
		if err := c.dispatch(s, cmd); err != nil {
			return c.newError(err, cmd.Location())
		}
	}
	return nil
}

// expand substitutes variables in the words of an instruction that allows it.
func (c *converter) expand(s *stage, cmd command) error {
	if _, isArg := cmd.Command.(*instructions.ArgCommand); isArg {
		return nil
	}
	if ex, ok := cmd.Command.(instructions.SupportsSingleWordExpansion); ok {
		err := ex.Expand(func(word string) (string, error) {
			w, unmatched, err := c.shlex.ProcessWord(word, s.env)
			c.reportUnmatched(s, cmd, unmatched)
			return w, err
		})
		if err != nil {
			return err
		}
	}
	if ex, ok := cmd.Command.(instructions.SupportsSingleWordExpansionRaw); ok {
		err := ex.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			w, unmatched, err := lex.ProcessWord(word, s.env)
			c.reportUnmatched(s, cmd, unmatched)
			return w, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) dispatch(s *stage, cmd command) error {
	saved := c.lint
	c.lint = c.lint.WithMergedConfigFromComments(cmd.Comments())
	defer func() { c.lint = saved }()
	if err := c.expand(s, cmd); err != nil {
		return err
	}
	switch x := cmd.Command.(type) {
	case *instructions.RunCommand:
		return c.dispatchRun(s, x, cmd)
	case *instructions.CopyCommand:
		return c.dispatchCopy(s, copyFromCopy(x), cmd)
	case *instructions.AddCommand:
		return c.dispatchCopy(s, copyFromAdd(x), cmd)
	case *instructions.WorkdirCommand:
		return c.dispatchWorkdir(s, x, cmd)
	case *instructions.ArgCommand:
		return c.dispatchArg(s, x)
	case *instructions.EnvCommand:
		return c.dispatchEnv(s, x)
	case *instructions.LabelCommand:
		return c.dispatchLabel(s, x)
	case *instructions.MaintainerCommand:
		s.img.Author = x.Maintainer
		c.commitHistory(&s.img, "MAINTAINER "+x.Maintainer, false, false)
	case *instructions.CmdCommand:
		return c.dispatchCmd(s, x)
	case *instructions.EntrypointCommand:
		return c.dispatchEntrypoint(s, x)
	case *instructions.HealthCheckCommand:
		return c.dispatchHealthcheck(s, x)
	case *instructions.ExposeCommand:
		return c.dispatchExpose(s, x)
	case *instructions.UserCommand:
		s.user = x.User
		s.img.Config.User = x.User
		c.commitHistory(&s.img, "USER "+x.User, false, false)
	case *instructions.VolumeCommand:
		return c.dispatchVolume(s, x)
	case *instructions.StopSignalCommand:
		return c.dispatchStopSignal(s, x)
	case *instructions.ShellCommand:
		s.img.Config.Shell = x.Shell
		c.commitHistory(&s.img, fmt.Sprintf("SHELL %v", x.Shell), false, false)
	case *instructions.OnbuildCommand:
		s.img.Config.OnBuild = append(s.img.Config.OnBuild, x.Expression)
	default:
		return fmt.Errorf("unsupported instruction %s", cmd.Name())
	}
	return nil
}

// normalizeWorkdir resolves p against the current directory dir.
func normalizeWorkdir(dir, p string) string {
	if !path.IsAbs(p) {
		p = path.Join("/", dir, p)
	}
	return path.Clean(p)
}

// resolveDest resolves a COPY destination against the working directory,
// keeping a trailing slash ("." and "" mean the directory itself).
func resolveDest(dir, p string) string {
	if p == "." || p == "" {
		p = "./"
	}
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	if !path.IsAbs(p) {
		p = path.Join("/", dir, p)
	}
	p = path.Clean(p)
	if trailing && p != "/" {
		p += "/"
	}
	return p
}

// uppercaseCmd upper-cases the instruction word of a source line.
func uppercaseCmd(str string) string {
	first, rest, ok := strings.Cut(str, " ")
	if !ok {
		return strings.ToUpper(first)
	}
	return strings.ToUpper(first) + " " + rest
}

// displayName is the instruction's source text with variables expanded
// where they are set, as progress shows it.
func (c *converter) displayName(s *stage, cmd command) string {
	lex := *c.shlex
	lex.RawQuotes = true
	lex.RawEscapes = true
	lex.SkipUnsetEnv = true
	str := cmd.Name()
	if st, ok := cmd.Command.(fmt.Stringer); ok {
		str = st.String()
	}
	if w, _, err := lex.ProcessWord(str, s.env); err == nil {
		str = w
	}
	return uppercaseCmd(str)
}
