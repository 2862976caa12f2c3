package solver

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestExplainMiss(t *testing.T) {
	d := digest.FromString
	files := func(kv ...string) map[string]digest.Digest {
		m := map[string]digest.Digest{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = d(kv[i+1])
		}
		return m
	}
	cmd := []Component{{Name: "command", Value: "make"}}
	cases := []struct {
		name      string
		prev, cur *StepRecord
		want      string
	}{
		{"no record", nil, &StepRecord{Key: d("k")}, ReasonNoPrevious},
		{"same key", &StepRecord{Key: d("k")}, &StepRecord{Key: d("k")}, ReasonEvicted},
		{"build arg",
			&StepRecord{Key: d("1"), Components: []Component{{"arg VERSION", "1"}}},
			&StepRecord{Key: d("2"), Components: []Component{{"arg VERSION", "2"}}},
			"build arg VERSION changed from 1 to 2"},
		{"long command",
			&StepRecord{Key: d("1"), Components: []Component{{"command", "go build -trimpath -ldflags=-s -o /out/app ./cmd/app"}}},
			&StepRecord{Key: d("2"), Components: []Component{{"command", "go build -o /out/app ./cmd/app"}}},
			"command changed"},
		{"multi-line value",
			&StepRecord{Key: d("1"), Components: []Component{{"command", "a\nb"}}},
			&StepRecord{Key: d("2"), Components: []Component{{"command", "a"}}},
			"command changed"},
		{"own change before parent",
			&StepRecord{Key: d("1"), Components: cmd, Inputs: []InputRecord{{Key: d("p1")}}},
			&StepRecord{Key: d("2"), Components: []Component{{"command", "make all"}}, Inputs: []InputRecord{{Key: d("p2")}}},
			`command changed from make to "make all"`},
		{"parent",
			&StepRecord{Key: d("1"), Components: cmd, Inputs: []InputRecord{{Key: d("p")}, {Key: d("q1")}}},
			&StepRecord{Key: d("2"), Components: cmd, Inputs: []InputRecord{{Key: d("p")}, {Key: d("q2")}}},
			ReasonParentMissed},
		{"first changed file in sorted order",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("b", "1", "a/z", "1", "c", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("b", "2", "a/z", "2", "c", "1")}}},
			"file a/z changed"},
		{"added file",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("b", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("a", "1", "b", "1")}}},
			"file a added"},
		{"removed file",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("a", "1", "b", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("b", "1")}}},
			"file a removed"},
		{"content input that became definition input",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("a", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("p")}}},
			"file a removed"},
		{"content checksum changed, files equal",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("a", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("a", "1")}}},
			"content of input 0 changed"},
		{"input added",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("p")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("p")}, {Key: d("q")}}},
			ReasonInputsChanged},
		{"nothing named changed",
			&StepRecord{Key: d("1"), Components: cmd, Inputs: []InputRecord{{Key: d("p")}}},
			&StepRecord{Key: d("2"), Components: cmd, Inputs: []InputRecord{{Key: d("p")}}},
			ReasonOpChanged},
	}
	for _, c := range cases {
		if got := explainMiss(c.prev, c.cur); got != c.want {
			t.Errorf("%s: reason %q, want %q", c.name, got, c.want)
		}
	}
}
