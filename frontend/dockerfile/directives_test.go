package dockerfile

import (
	"strings"
	"testing"
)

func TestSyntaxDirective(t *testing.T) {
	for _, ref := range []string{"docker/dockerfile:1", "docker/dockerfile:1.7-labs", "docker.io/docker/dockerfile:1",
		"docker/dockerfile", "docker/dockerfile-upstream:master",
		"docker/dockerfile:1@sha256:93bfd3b68c109427185cd78b4779fc82b484b0b7618e36d0f104d4d801e66d25"} {
		if _, err := convertString("# syntax="+ref+"\nFROM scratch\n", nil); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	for _, ref := range []string{"example.com/my/frontend:1", "tonistiigi/dockerfile:x", "docker/dockerfilex:1"} {
		_, err := convertString("# syntax="+ref+"\nFROM scratch\n", nil)
		if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:1: unsupported frontend \""+ref+"\"") {
			t.Errorf("%s: error %v", ref, err)
		}
	}
	// After the first instruction it is a comment.
	if _, err := convertString("FROM scratch\n# syntax=example.com/x\n", nil); err != nil {
		t.Errorf("a syntax comment after FROM: %v", err)
	}
}

func TestEscapeDirective(t *testing.T) {
	res, err := convertString("# escape=`\nFROM scratch\nENV A=one `\n    B=two\nLABEL path=C:\\dir\\sub\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(res.Image.Config.Env, " ")
	if !strings.Contains(env, "A=one") || !strings.Contains(env, "B=two") {
		t.Errorf("env %q", env)
	}
	if got := res.Image.Config.Labels["path"]; got != `C:\dir\sub` {
		t.Errorf("label %q", got)
	}
}

func TestCheckDirective(t *testing.T) {
	df := "FROM scratch AS a\nfrom scratch as b\nCMD echo hi\n"
	res, err := convertString(df, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules := func(ws []Warning) string {
		var out []string
		for _, w := range ws {
			out = append(out, w.RuleName)
		}
		return strings.Join(out, " ")
	}
	if got := rules(res.Warnings); got != "ConsistentInstructionCasing JSONArgsRecommended" {
		t.Errorf("warnings %q", got)
	}
	res, err = convertString("# check=skip=JSONArgsRecommended\n"+df, nil)
	if err != nil || rules(res.Warnings) != "ConsistentInstructionCasing" {
		t.Errorf("skip one rule: %v %q", err, rules(res.Warnings))
	}
	res, err = convertString("# check=skip=all\n"+df, nil)
	if err != nil || len(res.Warnings) != 0 {
		t.Errorf("skip all: %v %q", err, rules(res.Warnings))
	}
	_, err = convertString("# check=error=true\n"+df, nil)
	if err == nil || err.Error() != "Dockerfile: lint violation found for rules: ConsistentInstructionCasing, JSONArgsRecommended" {
		t.Errorf("error=true: %v", err)
	}
	_, err = convertString("# check=skip=all;error=true\n"+df, nil)
	if err != nil {
		t.Errorf("error=true with every rule skipped: %v", err)
	}
	_, err = convertString("# check=error=maybe\n"+df, nil)
	if err == nil {
		t.Error("a bad check directive was accepted")
	}
}
