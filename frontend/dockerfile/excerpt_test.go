package dockerfile

import (
	"testing"

	"github.com/strata-build/strata/llb"
)

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		loc   llb.Location
		lines []string
		want  string
	}{
		{"one line", llb.Location{File: "Dockerfile", StartLine: 4, EndLine: 4}, []string{"RUN exit 7"},
			"Dockerfile:4\n--------------------\n   4 | >>> RUN exit 7\n--------------------"},
		{"continued line", llb.Location{File: "app.Dockerfile", StartLine: 3, EndLine: 4}, []string{"RUN echo ok && \\", "  exit 3"},
			"app.Dockerfile:3-4\n--------------------\n   3 | >>> RUN echo ok && \\\n   4 | >>>   exit 3\n--------------------"},
		{"no lines", llb.Location{File: "Dockerfile", StartLine: 2, EndLine: 2}, nil, "Dockerfile:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Excerpt(tc.loc, tc.lines); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// A conversion error shows its source lines as Excerpt does, below the
// one-line summary.
func TestErrorShowsExcerpt(t *testing.T) {
	_, err := convertString("FROM busybox\nRUNN make\n", nil)
	want := "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)\n" +
		"Dockerfile:2\n--------------------\n   2 | >>> RUNN make\n--------------------"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}
