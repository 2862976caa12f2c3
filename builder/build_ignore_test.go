package builder_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
)

var ignoreContext = map[string]string{
	"app/main.go": "m", "app/debug.log": "d", "app/keep.log": "k", "app/x/y/z.tmp": "z", "app/x/y/w": "w",
	"secret/key": "s", "top.log": "t", "README.md": "r", "docs/a.md": "a", "docs/b.md": "b",
}

func TestDockerignoreExcludesAndExceptions(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY . /ctx/\nCOPY *.md /md/\n",
		".dockerignore": "# comment\n**/*.log\n!app/keep.log\n**/*.tmp\nsecret/\ndocs\n!docs/b.md\nDockerfile\n.dockerignore\n",
	}
	for k, v := range ignoreContext {
		files[k] = v
	}
	img := e.buildImage(files, builder.Options{})
	if got := strings.Join(below(img, "ctx"), " "); got != "README.md app app/keep.log app/main.go app/x app/x/y app/x/y/w docs docs/b.md" {
		t.Errorf("/ctx holds %q", got)
	}
	if got := strings.Join(below(img, "md"), " "); got != "README.md" {
		t.Errorf("/md holds %q", got)
	}

	err := e.buildError(map[string]string{"Dockerfile": "FROM scratch\nCOPY secret/key /k\n", ".dockerignore": "secret\n", "secret/key": "s"}, builder.Options{})
	if !strings.Contains(err.Error(), "secret/key") || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("copying an ignored file: %v", err)
	}
}

func TestDockerfileSpecificIgnoreWins(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"build/app.Dockerfile":              "FROM scratch\nCOPY . /ctx/\n",
		"build/app.Dockerfile.dockerignore": "build\nb\n",
		".dockerignore":                     "a\n",
		"a":                                 "a", "b": "b",
	})
	res, _ := e.mustBuild(dir, builder.Options{Dockerfile: filepath.Join(dir, "build/app.Dockerfile")})
	img := e.readImage(res)
	if got := strings.Join(below(img, "ctx"), " "); got != ".dockerignore a" {
		t.Errorf("/ctx holds %q", got)
	}
}

func TestDockerfileFromData(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY a /on-disk\n", "a": "a"})
	res, _ := e.mustBuild(dir, builder.Options{DockerfileData: []byte("FROM scratch\nCOPY a /from-stdin\n")})
	img := e.readImage(res)
	checkFiles(t, img, map[string]want{"/from-stdin": {data: "a", mode: 0o644}})
	checkAbsent(t, img, "/on-disk")
}
