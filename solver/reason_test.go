package solver

import (
	"encoding/json"
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
		{"one changed file, by its context path",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("app", "d", "app/main.go", "1", "app/util.go", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("app", "d", "app/main.go", "2", "app/util.go", "1")}}},
			"app/main.go changed"},
		{"several changed files, in sorted order",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("b", "1", "a/z", "1", "c", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("b", "2", "a/z", "2", "c", "1")}}},
			"2 files changed: a/z, b"},
		{"more changed files than are listed",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("e", "1", "d", "1", "c", "1", "b", "1", "a", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("e", "2", "d", "2", "c", "2", "b", "2", "a", "1")}}},
			"4 files changed: b, c, d, ..."},
		{"stage paths",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("/out", "d", "/out/app", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("/out", "d", "/out/app", "2")}}},
			"/out/app changed"},
		{"added file",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("b", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("a", "1", "b", "1")}}},
			"a added"},
		{"removed file",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("a", "1", "b", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("b", "1")}}},
			"a removed"},
		{"added directory named alone",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files(".", "d", "app", "d")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files(".", "d", "app", "d", "app/sub", "d", "app/sub/a", "1", "app/sub/b", "1", "app/subway", "1")}}},
			"2 files added: app/sub, app/subway"},
		{"changed, added and removed",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("app/a.go", "1", "app/b.go", "1", "app/old.go", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("app/a.go", "2", "app/b.go", "2", "app/new.go", "1")}}},
			"2 files changed: app/a.go, app/b.go; app/new.go added; app/old.go removed"},
		{"content input that became definition input",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1"), Files: files("a", "1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("p")}}},
			"a removed"},
		{"record without files",
			&StepRecord{Key: d("1"), Inputs: []InputRecord{{Key: d("c1")}}},
			&StepRecord{Key: d("2"), Inputs: []InputRecord{{Key: d("c2"), Files: files("a", "1")}}},
			"content of input 0 changed"},
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

// A step record kept with the files of an input under "Files" (keyed by
// destination path then) is read without them, so its miss names no path.
func TestStepRecordDropsDestinationKeyedFiles(t *testing.T) {
	var rec StepRecord
	old := `{"Key":"sha256:1","Inputs":[{"Key":"sha256:2","Files":{"main.go":"sha256:3"}}]}`
	if err := json.Unmarshal([]byte(old), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Inputs[0].Files != nil {
		t.Errorf("files of an old record: %v, want none", rec.Inputs[0].Files)
	}
	b, err := json.Marshal(StepRecord{Inputs: []InputRecord{{Files: map[string]digest.Digest{"app/main.go": "sha256:3"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var back StepRecord
	if err := json.Unmarshal(b, &back); err != nil || back.Inputs[0].Files["app/main.go"] != "sha256:3" {
		t.Errorf("round trip of %s: %+v, %v", b, back, err)
	}
}
