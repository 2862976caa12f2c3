package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command has examples, and every strata command line in them
// parses: the command exists, its flags exist and take the values given,
// its arguments are as many as it takes.
func TestExamples(t *testing.T) {
	root := newRoot()
	for _, c := range append([]*cobra.Command{root}, root.Commands()...) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples", c.CommandPath())
			continue
		}
		n := 0
		for _, line := range exampleLines(c.Example) {
			for _, args := range strataCommands(line) {
				n++
				if err := parseExample(args); err != nil {
					t.Errorf("%s example %q: %v", c.CommandPath(), line, err)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no strata command in its examples", c.CommandPath())
		}
	}
}

// parseExample parses one command line as strata would, without running it.
func parseExample(args []string) error {
	root := newRoot()
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	c, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	c.InitDefaultHelpFlag()
	if err := c.ParseFlags(rest); err != nil {
		return err
	}
	if c == root && root.Flags().Changed("version") {
		return nil
	}
	return c.ValidateArgs(c.Flags().Args())
}

// exampleLines are the command lines of an example text: comments and
// blank lines left out, continued lines joined.
func exampleLines(text string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if cur == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur += s
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// strataCommands splits a shell line into words and returns the
// arguments of each strata command in it: those of a pipeline, a list
// and a command substitution (which counts as one word of the command
// around it). Redirections are left out.
func strataCommands(line string) [][]string {
	var cmds [][]string
	var words []string
	var stack [][]string // the words of the commands around $( )
	var word strings.Builder
	inWord, quote, skipNext := false, byte(0), false
	end := func() {
		if inWord {
			if skipNext {
				skipNext = false
			} else if w := word.String(); w == "<" || w == ">" || w == "2>" {
				skipNext = true
			} else {
				words = append(words, w)
			}
		}
		word.Reset()
		inWord = false
	}
	flush := func() {
		end()
		if i := indexOf(words, "strata"); i >= 0 {
			cmds = append(cmds, words[i+1:])
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				word.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '$' && i+1 < len(line) && line[i+1] == '(':
			end()
			stack = append(stack, words)
			words = nil
			i++
		case ch == ')' && len(stack) > 0:
			flush()
			words = append(stack[len(stack)-1], "$(...)")
			stack = stack[:len(stack)-1]
		case ch == '|' || ch == ';' || ch == '&':
			flush()
		case ch == ' ' || ch == '\t':
			end()
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return cmds
}

func indexOf(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

func TestStrataCommands(t *testing.T) {
	for line, want := range map[string]string{
		`strata images --format 'table {{.ID}}\t{{.Tag}}'`:              `[images --format table {{.ID}}\t{{.Tag}}]`,
		`strata rmi $(strata images -q --filter dangling=true)`:         `[images -q --filter dangling=true] [rmi $(...)]`,
		`docker save busybox | strata load -`:                           `[load -]`,
		`strata build -t hello - < Dockerfile`:                          `[build -t hello -]`,
		`strata save busybox | gzip > busybox.tar.gz`:                   `[save busybox]`,
		`echo "$T" | strata login -u ci --password-stdin r.example.com`: `[login -u ci --password-stdin r.example.com]`,
		`strata tag a b && strata push -q b`:                            `[tag a b] [push -q b]`,
	} {
		var got []string
		for _, c := range strataCommands(line) {
			got = append(got, "["+strings.Join(c, " ")+"]")
		}
		if s := strings.Join(got, " "); s != want {
			t.Errorf("%s: %s, want %s", line, s, want)
		}
	}
}
