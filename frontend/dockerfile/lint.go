package dockerfile

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/util/suggest"
)

// newLinter configures BuildKit's linter from the "# check=" directive and
// collects its findings as Warnings.
func (c *converter) newLinter() error {
	str, _, _, _ := parser.ParseDirective("check", c.opts.Dockerfile)
	cfg, err := linter.ParseLintOptions(str)
	if err != nil {
		return err
	}
	cfg.Warn = func(rule, _, url, msg string, loc []parser.Range) {
		c.warnings = append(c.warnings, Warning{RuleName: rule, Detail: msg, Location: c.location(loc), URL: url})
	}
	c.lint = linter.New(cfg)
	return nil
}

// lintError fails the conversion when "# check=error=true" is set and a
// rule fired, naming the rules as BuildKit does.
func (c *converter) lintError() error {
	if !c.lint.ReturnAsError || len(c.warnings) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var rules []string
	for _, w := range c.warnings {
		if !seen[w.RuleName] {
			seen[w.RuleName] = true
			rules = append(rules, w.RuleName)
		}
	}
	slices.Sort(rules)
	return fmt.Errorf("lint violation found for rules: %s", strings.Join(rules, ", "))
}

// checkSyntax accepts a "# syntax=" directive naming the docker/dockerfile
// frontend (any tag or digest, the -upstream variant, with or without the
// docker.io registry): strata's own frontend implements it. Any other
// frontend image is an error, since strata cannot run it.
func (c *converter) checkSyntax() error {
	ref, _, loc, ok := parser.ParseDirective("syntax", c.opts.Dockerfile)
	if !ok || ref == "" {
		return nil
	}
	name := ref
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "index.docker.io/")
	if name == "docker/dockerfile" || name == "docker/dockerfile-upstream" {
		return nil
	}
	return c.errorf(loc, "unsupported frontend %q in the syntax directive: strata builds with its built-in Dockerfile frontend, use docker/dockerfile:1 or remove the directive", ref)
}

var reservedStageNames = map[string]bool{"context": true, "scratch": true}

func validateStageNames(stages []instructions.Stage, lint *linter.Linter) {
	seen := map[string]bool{}
	for _, st := range stages {
		if st.Name == "" {
			continue
		}
		if reservedStageNames[st.Name] {
			lint.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
		}
		if seen[st.Name] {
			lint.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
		}
		seen[st.Name] = true
	}
}

func consistentCase(s string) bool { return s == strings.ToLower(s) || s == strings.ToUpper(s) }

// validateCommandCasing warns about instructions whose casing differs from
// the majority of the Dockerfile's.
func validateCommandCasing(stages []instructions.Stage, lint *linter.Linter) {
	lower, upper := 0, 0
	count := func(n string) {
		if !consistentCase(n) {
			return
		}
		if strings.ToLower(n) == n {
			lower++
		} else {
			upper++
		}
	}
	for _, st := range stages {
		count(st.OrigCmd)
		for _, cmd := range st.Commands {
			count(cmd.Name())
		}
	}
	check := func(n string, loc []parser.Range) {
		want := ""
		if lower > upper && strings.ToLower(n) != n {
			want = "lowercase"
		} else if lower <= upper && strings.ToUpper(n) != n {
			want = "uppercase"
		}
		if want != "" {
			lint.Run(&linter.RuleConsistentInstructionCasing, loc, linter.RuleConsistentInstructionCasing.Format(n, want))
		}
	}
	for _, st := range stages {
		check(st.OrigCmd, st.Location)
		for _, cmd := range st.Commands {
			check(cmd.Name(), cmd.Location())
		}
	}
}

var (
	secretKeyDeny  = regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	secretKeyAllow = regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

func validateNoSecretKey(instruction, key string, loc []parser.Range, lint *linter.Linter) {
	if secretKeyDeny.MatchString(key) && !secretKeyAllow.MatchString(key) {
		lint.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

// reportUnmatched warns about variables used by an instruction but never
// defined (declared ARGs without a value do not count).
func (c *converter) reportUnmatched(s *stage, cmd command, unmatched map[string]struct{}) {
	for _, v := range slices.Sorted(maps.Keys(unmatched)) {
		declared := false
		for _, a := range s.buildArgs {
			declared = declared || a.Key == v
		}
		if declared {
			continue
		}
		match, _ := suggest.Search(v, s.env.Keys(), true)
		c.lint.Run(&linter.RuleUndefinedVar, cmd.Location(), linter.RuleUndefinedVar.Format(v, match))
	}
}

// reportUnusedFromArgs warns about variables in FROM that no global ARG
// declares.
func (c *converter) reportUnusedFromArgs(unmatched map[string]struct{}, loc []parser.Range) {
	known := c.globalArgs.Keys()
	for k := range c.metaArgs {
		known = append(known, k)
	}
	for _, v := range slices.Sorted(maps.Keys(unmatched)) {
		if c.metaArgs[v] {
			continue
		}
		if _, ok := c.globalArgs.Get(v); ok {
			continue
		}
		match, _ := suggest.Search(v, known, true)
		c.lint.Run(&linter.RuleUndefinedArgInFrom, loc, linter.RuleUndefinedArgInFrom.Format(v, match))
	}
}
