package dockerfile

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// didYouMean is " (did you mean X?)" for the option closest to val, or ""
// when none is close. Stage names are compared without case, as they are
// looked up.
func didYouMean(val string, options []string) string {
	m := closest(val, options, true)
	if m == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", m)
}

// closest is the option nearest to val in edits, "" when val is one of
// the options or none is close: at most two edits away, and fewer than
// half the length of the longer name (so "b" is not taken for "a"). Of
// options equally near, the first wins. fold compares without case.
func closest(val string, options []string, fold bool) string {
	if fold {
		val = strings.ToLower(val)
	}
	best, bestDist := "", 3
	for _, opt := range options {
		o := opt
		if fold {
			o = strings.ToLower(o)
		}
		if o == val {
			return ""
		}
		d := editDistance(val, o)
		longer := max(utf8.RuneCountInString(val), utf8.RuneCountInString(o))
		if d < bestDist && 2*d < longer {
			best, bestDist = opt, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of two neighbours that turn a into b (the optimal string alignment
// distance): "chwon" is one swap from "chown", two edits from "chmod".
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// rows i-2, i-1 and i of the table over prefixes of x and y
	prev2, prev, cur := make([]int, len(y)+1), make([]int, len(y)+1), make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}

// stageNames lists the names of the Dockerfile's named stages that come
// before the stage at index before (all of them for before < 0), in order.
func (c *converter) stageNames(before int) []string {
	var out []string
	for _, s := range c.stages {
		if before >= 0 && s.index >= before {
			break
		}
		if !s.unregistered && s.st.Name != "" {
			out = append(out, s.st.Name)
		}
	}
	return out
}

// stageSuggestion is the hint for an image reference of s that could not
// be resolved: FROM, COPY --from and RUN --mount from= all take a name
// that is not a stage for an image, so a misspelt stage name fails as an
// image. A stage that could have been meant is one named before s.
func (c *converter) stageSuggestion(s *stage, ref string) string {
	return didYouMean(ref, c.stageNames(s.index))
}

// targetError says that --target names no stage, with the stage meant or
// the stages there are.
func (c *converter) targetError() error {
	names := c.stageNames(-1)
	msg := fmt.Sprintf("target stage %q could not be found", c.opts.Target)
	switch hint := didYouMean(c.opts.Target, names); {
	case hint != "":
		msg += hint
	case len(names) == 0:
		msg += " (no stage is named: name one with FROM image AS name)"
	default:
		msg += fmt.Sprintf(" (the stages are: %s)", strings.Join(names, ", "))
	}
	return errors.New(msg)
}

// instructionFlags are the flags each instruction takes, as the parser
// knows them (without dashes).
var instructionFlags = map[string][]string{
	"add":         {"chown", "chmod", "link", "keep-git-dir", "checksum", "unpack", "exclude"},
	"copy":        {"from", "chown", "chmod", "link", "parents", "exclude"},
	"from":        {"platform"},
	"run":         {"mount", "network", "security", "device"},
	"healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
}

// unknownFlag matches the parser's "unknown flag: --chwon", with the
// suggestion it may add: that one lacks the dashes and, of flags equally
// near, picks one at random.
var unknownFlag = regexp.MustCompile(`^unknown flag: --(\S+)(?: \(did you mean [^)]*\))?$`)

// flagMessage rewrites the parser's message for an unknown flag of the
// instruction on line: "unknown flag: --chwon (did you mean --chown?)".
// Other messages are returned as they are.
func flagMessage(msg, line string) string {
	m := unknownFlag.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	words := strings.Fields(line)
	if len(words) > 1 && strings.EqualFold(words[0], "onbuild") {
		words = words[1:]
	}
	if len(words) == 0 {
		return msg
	}
	flags, ok := instructionFlags[strings.ToLower(words[0])]
	if !ok {
		return msg
	}
	out := "unknown flag: --" + m[1]
	if s := closest(m[1], flags, false); s != "" {
		out += " (did you mean --" + s + "?)"
	}
	return out
}

// UnusedArg is a --build-arg that no ARG of the stages built declares.
type UnusedArg struct {
	Name string
	// Suggest is the ARG declared in the Dockerfile whose name is closest
	// to Name, "" when none is close.
	Suggest string
}

// String is "build arg VERSOIN was not consumed by any ARG (did you mean
// VERSION?)".
func (u UnusedArg) String() string {
	s := "build arg " + u.Name + " was not consumed by any ARG of the stages built"
	if u.Suggest != "" {
		s += " (did you mean " + u.Suggest + "?)"
	}
	return s
}

// predefinedArg tells the build args a build takes without an ARG: the
// proxy args every RUN sees and SOURCE_DATE_EPOCH, which sets the image
// times.
func predefinedArg(name string) bool {
	return slices.Contains(proxyArgs, name) || name == "SOURCE_DATE_EPOCH"
}

// unusedArgs lists, sorted, the --build-arg names that no ARG consumed:
// neither a global ARG nor an ARG of a stage that was built. The automatic
// platform args and the predefined ones are never unused.
func (c *converter) unusedArgs() []UnusedArg {
	var declared []string
	for name := range c.metaArgs {
		declared = append(declared, name)
	}
	for _, s := range c.stages {
		for _, cmd := range s.st.Commands {
			if a, ok := cmd.(*instructions.ArgCommand); ok {
				for _, kv := range a.Args {
					declared = append(declared, kv.Key)
				}
			}
		}
	}
	slices.Sort(declared)
	declared = slices.Compact(declared)
	auto := defaultArgs(c.platform, nil, "")
	var out []UnusedArg
	for name := range c.opts.BuildArgs {
		if c.consumedArgs[name] || c.metaArgs[name] || predefinedArg(name) {
			continue
		}
		if _, ok := auto.Get(name); ok {
			continue
		}
		out = append(out, UnusedArg{Name: name, Suggest: closest(name, declared, false)})
	}
	slices.SortFunc(out, func(a, b UnusedArg) int { return strings.Compare(a.Name, b.Name) })
	return out
}
