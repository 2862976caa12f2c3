package dockerfile

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		val     string
		options []string
		fold    bool
		want    string
	}{
		{"chwon", []string{"chmod", "chown"}, false, "chown"}, // a swap is one edit
		{"chwon", []string{"chown", "chmod"}, false, "chown"},
		{"buidler", []string{"base", "builder"}, true, "builder"},
		{"BUIDLER", []string{"builder"}, true, "builder"},
		{"BUIDLER", []string{"builder"}, false, ""},
		{"VERSOIN", []string{"VERSION", "VARIANT"}, false, "VERSION"},
		{"b", []string{"a"}, false, ""},                 // one edit, but all of the name
		{"build", []string{"build", "buid"}, false, ""}, // an exact match means no typo
		{"production", []string{"test", "build"}, false, ""},
		{"biuld", []string{"guild", "build"}, false, "build"}, // the nearest, not the first near
	} {
		if got := closest(tc.val, tc.options, tc.fold); got != tc.want {
			t.Errorf("closest(%q, %q, %v) = %q, want %q", tc.val, tc.options, tc.fold, got, tc.want)
		}
	}
}

// Every flag the suggestions offer is one the parser takes.
func TestInstructionFlagsAreKnownToTheParser(t *testing.T) {
	for instr, flags := range instructionFlags {
		for _, f := range flags {
			line := fmt.Sprintf("%s --%s=x a /b", strings.ToUpper(instr), f)
			if instr == "from" {
				line = "FROM --" + f + "=x busybox"
			}
			df := "FROM busybox\n" + line + "\n"
			ast, err := parser.Parse(bytes.NewReader([]byte(df)))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if _, _, err := instructions.Parse(ast.AST, nil); err != nil && strings.Contains(err.Error(), "unknown flag") {
				t.Errorf("%s: %v", line, err)
			}
		}
	}
}

func TestUnusedArgs(t *testing.T) {
	df := `ARG GLOBAL
FROM busybox AS other
ARG ONLYOTHER
FROM busybox
ARG VERSION
ARG USED=1
RUN echo $VERSION $USED
`
	args := map[string]string{
		"GLOBAL": "1", "USED": "2", "VERSION": "3", // declared
		"VERSOIN": "1", "ONLYOTHER": "1", "BUILDKIT_INLINE_CACHE": "1", // not consumed
		"HTTP_PROXY": "http://proxy", "SOURCE_DATE_EPOCH": "0", "TARGETARCH": "arm64", // predefined
	}
	res, err := convertString(df, func(o *Options) { o.BuildArgs = args })
	if err != nil {
		t.Fatal(err)
	}
	want := []UnusedArg{{Name: "BUILDKIT_INLINE_CACHE"}, {Name: "ONLYOTHER"}, {Name: "VERSOIN", Suggest: "VERSION"}}
	if diff := cmp.Diff(want, res.UnusedArgs); diff != "" {
		t.Errorf("unused args (-want +got):\n%s", diff)
	}
	if got, want := res.UnusedArgs[2].String(), "build arg VERSOIN was not consumed by any ARG of the stages built (did you mean VERSION?)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got, want := res.UnusedArgs[1].String(), "build arg ONLYOTHER was not consumed by any ARG of the stages built"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	// The ARGs of the stage built with --target count.
	res, err = convertString(df, func(o *Options) { o.BuildArgs = map[string]string{"ONLYOTHER": "1"}; o.Target = "other" })
	if err != nil || len(res.UnusedArgs) != 0 {
		t.Errorf("--target other: unused %v, %v", res.UnusedArgs, err)
	}
}
