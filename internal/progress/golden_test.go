package progress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the output")

// t0 is when the scripted build starts.
var t0 = time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// script is a build's events, with fixed times: steps cached, run, failed
// and never ended, with output on both streams, a line split over two
// events and a line left unterminated.
func script() []Event {
	v := func(name string) func(ms int, s Status) Event {
		d := digest.FromString(name)
		return func(ms int, s Status) Event { return Event{Vertex: d, Name: name, Status: s, Time: at(ms)} }
	}
	logf := func(e Event, stream int, data string) Event {
		e.Data, e.Stream = []byte(data), stream
		return e
	}
	ctx := v("[internal] load build context")
	base := v("[1/5] FROM docker.io/library/alpine:3.20")
	cp := v("[2/5] COPY . .")
	mk := v("[3/5] RUN make")
	check := v("[tools 2/2] RUN ./check.sh")
	slow := v("[5/5] RUN ./slow.sh")
	started := mk(200, Started)
	started.Reason = "main.c changed"
	failed := check(1550, Error)
	failed.Err = `process "/bin/sh -c ./check.sh" did not complete successfully: exit code: 1`
	return []Event{
		ctx(0, Started),
		base(50, Cached),
		logf(ctx(80, Log), 1, "transferring context: 1.2kB\n"),
		ctx(100, Done),
		cp(120, Cached),
		started,
		check(250, Started),
		logf(mk(300, Log), 1, "cc -c main.c\ncc -o app"),
		logf(check(400, Log), 2, "checking...\n"),
		logf(mk(500, Log), 1, " main.o\n"),
		logf(mk(600, Log), 2, "main.c:3: warning: unused variable\n"),
		mk(1400, Done),
		logf(check(1450, Log), 1, "FAIL: TestParse\nexit status 1"),
		logf(slow(1500, Started), 0, ""),
		logf(slow(1520, Log), 1, "working\n"),
		failed,
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, d)
	}
}

func TestPlainGolden(t *testing.T) {
	var out bytes.Buffer
	p := NewPlain(&out)
	for _, e := range script() {
		p.Emit(e)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "plain.golden", out.Bytes())
}

func TestRawJSONGolden(t *testing.T) {
	var out bytes.Buffer
	r := NewRawJSON(&out)
	events := script()
	for _, e := range events {
		r.Emit(e)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "rawjson.golden", out.Bytes())

	// Every line is one SolveStatus with BuildKit's names, and the logs
	// carry the output, base64-encoded.
	var logs []string
	known := []string{"digest", "name", "started", "completed", "cached", "error", "vertex", "stream", "data", "timestamp"}
	for i, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var st map[string][]map[string]any
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		for k, list := range st {
			if k != "vertexes" && k != "logs" {
				t.Errorf("line %d: key %q", i+1, k)
			}
			for _, m := range list {
				for f := range m {
					if !slices.Contains(known, f) {
						t.Errorf("line %d: field %q", i+1, f)
					}
				}
				if k == "logs" {
					b, err := base64.StdEncoding.DecodeString(m["data"].(string))
					if err != nil {
						t.Fatal(err)
					}
					logs = append(logs, string(b))
				}
			}
		}
	}
	var want []string
	for _, e := range events {
		if e.Status == Log {
			want = append(want, string(e.Data))
		}
	}
	if !slices.Equal(logs, want) {
		t.Errorf("logs %q, want %q", logs, want)
	}
}

// The final output of a tty view, as a terminal shows it: every step on
// one line (the one still running CANCELED), the failed step's output,
// the summary.
func TestTTYFinalGolden(t *testing.T) {
	var out bytes.Buffer
	var now atomic.Pointer[time.Time]
	now.Store(&t0)
	r := NewTTY(&out, Options{
		NoColor:  true,
		Interval: time.Hour, // no frame but the final one
		Size:     func() (int, int) { return 72, 20 },
		Now:      func() time.Time { return *now.Load() },
	})
	for _, e := range script() {
		r.Emit(e)
	}
	end := at(2000)
	now.Store(&end)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte(csi+"3")) {
		t.Errorf("colour with NoColor: %q", out.Bytes())
	}
	checkGolden(t, "tty.golden", []byte(emulate(out.Bytes()).text()))
}
