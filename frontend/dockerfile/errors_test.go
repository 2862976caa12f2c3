package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func convertString(df string, mod func(*Options)) (*Result, error) {
	opts := Options{Dockerfile: []byte(df), Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, Resolver: &fakeResolver{}}
	if mod != nil {
		mod(&opts)
	}
	return Convert(context.Background(), opts)
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		opts func(*Options)
		want string // the whole Error() text
		line string // the source text the error carries
	}{
		{"empty", "\n  \n", nil, "Dockerfile: the Dockerfile cannot be empty", ""},
		{"no stages", "# only a comment\nARG X=1\n", nil, "Dockerfile: dockerfile contains no stages to build", ""},
		{"unknown instruction", "FROM busybox\nRUN true\nRUNN make\n", nil, "Dockerfile:3: unknown instruction: RUNN (did you mean RUN?)", "RUNN make"},
		{"bad flag", "FROM busybox\nCOPY --frum=x a b\n", nil, "Dockerfile:2: unknown flag: --frum (did you mean --from?)", "COPY --frum=x a b"},
		{"misspelt copy", "FROM busybox\nCOPPY a /a\n", nil, "Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)", "COPPY a /a"},
		{"misspelt chown", "FROM busybox\nCOPY --chwon=1 a /a\n", nil, "Dockerfile:2: unknown flag: --chwon (did you mean --chown?)", "COPY --chwon=1 a /a"},
		{"instruction before from", "RUN true\nFROM busybox\n", nil, "Dockerfile:1: no build stage in current context", "RUN true"},
		{"unknown target", "FROM busybox AS a\nFROM busybox AS test\n", func(o *Options) { o.Target = "b" },
			`Dockerfile: target stage "b" could not be found (the stages are: a, test)`, ""},
		{"misspelt target", "FROM busybox AS build\nFROM busybox AS test\n", func(o *Options) { o.Target = "biuld" },
			`Dockerfile: target stage "biuld" could not be found (did you mean build?)`, ""},
		{"target without named stages", "FROM busybox\n", func(o *Options) { o.Target = "build" },
			`Dockerfile: target stage "build" could not be found (no stage is named: name one with FROM image AS name)`, ""},
		{"misspelt copy from", "FROM busybox AS builder\nFROM busybox\nCOPY --from=buidler /x /x\n", nil,
			"Dockerfile:3: buidler: failed to resolve source metadata for docker.io/library/buidler:latest: not found (did you mean builder?)", "COPY --from=buidler /x /x"},
		{"misspelt mount from", "FROM busybox AS Builder\nFROM busybox\nRUN --mount=from=buidler,target=/b true\n", nil,
			"Dockerfile:3: buidler: failed to resolve source metadata for docker.io/library/buidler:latest: not found (did you mean builder?)", "RUN --mount=from=buidler,target=/b true"},
		{"misspelt from", "FROM busybox AS builder\nFROM buidler\n", nil,
			"Dockerfile:2: buidler: failed to resolve source metadata for docker.io/library/buidler:latest: not found (did you mean builder?)", "FROM buidler"},
		{"misspelt from of a later stage", "FROM buidler AS a\nFROM busybox AS builder\n", func(o *Options) { o.Target = "a" },
			"Dockerfile:1: buidler: failed to resolve source metadata for docker.io/library/buidler:latest: not found", "FROM buidler AS a"},
		{"misspelt uppercase copy from", "FROM busybox AS builder\nFROM busybox\nCOPY --from=Buidler /x /x\n", nil,
			`Dockerfile:3: failed to parse stage name "Buidler": could not parse reference: Buidler (did you mean builder?)`, "COPY --from=Buidler /x /x"},
		{"missing base image", "FROM busybox\nFROM nosuchimage AS x\nRUN true\n", nil,
			"Dockerfile:2: nosuchimage: failed to resolve source metadata for docker.io/library/nosuchimage:latest: not found", "FROM nosuchimage AS x"},
		{"bad stage index", "FROM busybox\nCOPY --from=3 /a /b\n", nil, "Dockerfile:2: invalid stage index 3", "COPY --from=3 /a /b"},
		{"copy from later stage", "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n", func(o *Options) { o.Target = "a" },
			`Dockerfile:2: cannot copy from stage "b", it needs to be defined before current stage "a"`, "COPY --from=b /x /x"},
		{"circular", "FROM busybox AS a\nCOPY --from=a /x /x\n", nil, "Dockerfile:1: circular dependency detected on stage: a", "FROM busybox AS a"},
		{"multi source dest", "FROM busybox\nCOPY a b /dst\n", nil,
			"Dockerfile:2: When using COPY with more than one source file, the destination must be a directory and end with a /", "COPY a b /dst"},
		{"multi source add", "FROM busybox\nADD a b /dst\n", nil,
			"Dockerfile:2: When using ADD with more than one source file, the destination must be a directory and end with a /", "ADD a b /dst"},
		{"source outside context", "FROM busybox\nCOPY a/../../x /x\n", nil, `Dockerfile:2: COPY source "a/../../x" is outside the build context`, "COPY a/../../x /x"},
		{"add source outside context", "FROM busybox\nADD ../x /x\n", nil, `Dockerfile:2: ADD source "../x" is outside the build context`, "ADD ../x /x"},
		{"copy url", "FROM busybox\nCOPY https://example.com/x /x\n", nil, "Dockerfile:2: source can't be a URL for COPY", "COPY https://example.com/x /x"},
		{"copy git", "FROM busybox\nCOPY git@github.com:a/b.git /x\n", nil, "Dockerfile:2: source can't be a git ref for COPY", "COPY git@github.com:a/b.git /x"},
		{"bad chmod", "FROM busybox\nCOPY --chmod=99999 a /a\n", nil,
			"Dockerfile:2: invalid chmod parameter: '99999'. it should be octal string and between 0 and 07777", "COPY --chmod=99999 a /a"},
		{"link chown name", "FROM busybox\nCOPY --link --chown=app a /a\n", nil,
			"Dockerfile:2: --chown=app: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", "COPY --link --chown=app a /a"},
		{"checksum local", "FROM busybox\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 a /a\n", nil,
			"Dockerfile:2: checksum requires HTTP(S) or Git sources", ""},
		{"from expansion", "FROM busybox\nARG S=a\nCOPY --from=$S /a /a\n", nil,
			"Dockerfile:3: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround", "COPY --from=$S /a /a"},
		{"blank base", "ARG IMG\nFROM $IMG\n", nil, "Dockerfile:2: base name ($IMG) should not be blank", "FROM $IMG"},
		{"bad mount", "FROM busybox\nRUN --mount=type=bogus true\n", nil, `Dockerfile:2: unsupported mount type "bogus"`, ""},
		{"mount root", "FROM busybox\nRUN --mount=type=cache,target=/ true\n", nil, `Dockerfile:2: invalid mount target "/"`, ""},
		{"bad stopsignal", "FROM busybox\nSTOPSIGNAL SIGNOPE\n", nil, "Dockerfile:2: invalid signal: SIGNOPE", "STOPSIGNAL SIGNOPE"},
		{"bad port", "FROM busybox\nEXPOSE 80/xyz\n", nil, `Dockerfile:2: invalid port: "80/xyz": invalid proto: xyz`, ""},
		{"bad platform", "FROM --platform=linux/arm/v7/x busybox\n", nil,
			"Dockerfile:1: failed to parse platform linux/arm/v7/x: invalid platform \"linux/arm/v7/x\": want os[/arch[/variant]]", ""},
		{"unterminated heredoc", "FROM busybox\nRUN <<EOF\necho\n", nil, "Dockerfile:2: unterminated heredoc", ""},
		{"multiline error line", "FROM busybox\nRUN --mount=type=cache,target=/ \\\n  true\n", nil, `Dockerfile:2: invalid mount target "/"`, "RUN --mount=type=cache,target=/ \\\n  true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertString(tc.df, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			got, _, _ := strings.Cut(err.Error(), "\n")
			if got != tc.want {
				t.Fatalf("error:\n got %q\nwant %q", got, tc.want)
			}
			if tc.line != "" && fe.Line != tc.line {
				t.Fatalf("line: got %q, want %q", fe.Line, tc.line)
			}
			if fe.Line != "" && !strings.Contains(err.Error(), fmt.Sprintf("\n%4d | >>> %s", fe.Location.StartLine, strings.Split(fe.Line, "\n")[0])) {
				t.Fatalf("error text does not show the source line:\n%s", err)
			}
		})
	}
}

func TestMissingImageWrapsResolverError(t *testing.T) {
	_, err := convertString("FROM nosuchimage\n", nil)
	if !errors.Is(err, errNotFound) {
		t.Fatalf("error does not wrap the resolver's: %v", err)
	}
}
