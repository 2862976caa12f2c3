package builder_test

import (
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
)

func TestHeredocs(t *testing.T) {
	e := newEnv(t)
	img := e.buildImage(map[string]string{
		"Dockerfile": "FROM busybox\n" +
			"ARG NAME=world\n" +
			"RUN <<EOF\necho one > /h1\necho \"two $NAME\" >> /h1\nEOF\n" +
			"RUN <<-EOF\n\techo tabbed > /h2\n\tEOF\n" +
			"RUN <<'EOF'\necho \"quoted $NAME\" > /h3\nEOF\n" +
			"RUN <<EOF\n#!/bin/sh\necho \"shebang $0\" > /h4\nEOF\n" +
			"RUN cat <<A > /h5 && cat <<B >> /h5\nfirst\nA\nsecond\nB\n" +
			"COPY <<EOF /c1\nhello $NAME\nEOF\n" +
			"COPY <<'EOF' /c2\nhello $NAME\nEOF\n" +
			"COPY <<one <<two /cdir/\n1\none\n2\ntwo\n" +
			"COPY --chmod=0755 --chown=app <<EOF /deep/c3\nx\nEOF\n" +
			"COPY <<-EOF /c4\n\tindented\n\tEOF\n",
	}, builder.Options{})
	for p, w := range map[string]string{
		"/h1": "one\ntwo world\n", "/h2": "tabbed\n", "/h3": "quoted world\n", "/h4": "shebang /dev/pipes/EOF\n",
		"/h5": "first\nsecond\n", "/c1": "hello world\n", "/c2": "hello $NAME\n",
		"/cdir/one": "1\n", "/cdir/two": "2\n", "/deep/c3": "x\n", "/c4": "indented\n",
	} {
		if got := fileData(img, p); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	checkFiles(t, img, map[string]want{
		"/c1": {data: "hello world\n", mode: 0o644}, "/deep/c3": {data: "x\n", mode: 0o755, uid: 1000, gid: 1000},
		"/deep": {mode: 0o755},
	})
	hist := strings.Join(historyOf(img, 1), "\n")
	for _, w := range []string{"COPY <<EOF /c1 # buildkit", "COPY <<one <<two /cdir/ # buildkit"} {
		if !strings.Contains(hist, w) {
			t.Errorf("history lacks %q:\n%s", w, hist)
		}
	}
}
