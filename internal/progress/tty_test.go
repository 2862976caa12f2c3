package progress

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// stuckWriter blocks every Write until released.
type stuckWriter struct {
	entered chan struct{} // closed at the first Write
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// A terminal that takes no output (a stopped pager, a full pipe) blocks
// the drawing, never Emit: events are recorded in bounded memory and the
// frames wait.
func TestTTYEmitDoesNotBlock(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	r := NewTTY(w, Options{Interval: time.Millisecond, NoColor: true})
	d := digest.FromString("run")
	r.Emit(Event{Vertex: d, Name: "[1/1] RUN yes", Status: Started, Time: time.Now()})
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no frame was drawn")
	}
	const n = 20000
	start := time.Now()
	var slowest time.Duration
	for i := range n {
		t0 := time.Now()
		r.Emit(Event{Vertex: d, Name: "[1/1] RUN yes", Status: Log, Stream: 1, Time: t0, Data: fmt.Appendf(nil, "line %d\n", i)})
		slowest = max(slowest, time.Since(t0))
	}
	total := time.Since(start)
	t.Logf("%d events in %v while the terminal was stuck; slowest Emit %v", n, total, slowest)
	if total > 5*time.Second || slowest > time.Second {
		t.Errorf("Emit waited for the terminal: %d events took %v, the slowest %v", n, total, slowest)
	}
	r.mu.Lock()
	kept := len(r.vertices[d].out.lines)
	r.mu.Unlock()
	if kept != keepLines {
		t.Errorf("kept %d lines of output, want the last %d", kept, keepLines)
	}
	r.Emit(Event{Vertex: d, Name: "[1/1] RUN yes", Status: Error, Time: time.Now(), Err: "killed"})
	close(w.release)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	s := emulate(w.buf.Bytes()).text()
	if !strings.Contains(s, fmt.Sprintf("(%d earlier lines not kept)\nline %d\n", n-keepLines, n-keepLines)) || !strings.Contains(s, fmt.Sprintf("line %d\n------\n", n-1)) {
		t.Errorf("the report of the failed step does not hold its last %d lines:\n%s", keepLines, s[max(0, len(s)-2000):])
	}
}

// lockedView renders the live view of r as a terminal of width x height
// would show it.
func lockedView(r *TTY, now time.Time, width, height int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view(now, width-1, height-1, false)
}

// A view taller than the terminal gives up output lines, then the oldest
// finished steps, and keeps every running step.
func TestTTYFitsTheTerminal(t *testing.T) {
	r := NewTTY(io.Discard, Options{Interval: time.Hour, NoColor: true, Now: func() time.Time { return t0 }})
	defer r.Close()
	for i := range 4 {
		d := digest.FromString(fmt.Sprint("done", i))
		r.Emit(Event{Vertex: d, Name: fmt.Sprintf("done %d", i), Status: Cached, Time: t0})
	}
	for i := range 3 {
		d := digest.FromString(fmt.Sprint("run", i))
		name := fmt.Sprintf("run %d", i)
		r.Emit(Event{Vertex: d, Name: name, Status: Started, Time: t0})
		r.Emit(Event{Vertex: d, Name: name, Status: Log, Stream: 1, Time: t0, Data: []byte("a\nb\nc\nd\ne\nf\ng\nh\n")})
	}
	count := func(lines []string, sub string) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, sub) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		height, logs, done int
	}{
		{height: 100, logs: 3 * ttyLogLines, done: 4},
		{height: 21, logs: 3 * 4, done: 4}, // 1 + 7 steps + 12 lines = 20 rows
		{height: 20, logs: 3 * 3, done: 4},
		{height: 9, logs: 0, done: 4},
		{height: 6, logs: 0, done: 1},
		{height: 4, logs: 0, done: 0},
	} {
		v := lockedView(r, t0, 80, tc.height)
		if len(v) > max(tc.height-1, 3) || count(v, "=> => #") != tc.logs || count(v, "CACHED") != tc.done || !strings.HasPrefix(v[0], "[+] Building") {
			t.Errorf("height %d: %d lines, %d of output, %d finished steps; want %d of output, %d finished:\n%s",
				tc.height, len(v), count(v, "=> => #"), count(v, "CACHED"), tc.logs, tc.done, strings.Join(v, "\n"))
		}
		if tc.height >= 5 && count(v, "run ") != 3 {
			t.Errorf("height %d: running steps missing:\n%s", tc.height, strings.Join(v, "\n"))
		}
	}
	if v := lockedView(r, t0, 80, 100); !strings.HasSuffix(v[len(v)-1], "=> => # h") || !strings.HasSuffix(v[len(v)-ttyLogLines], "=> => # c") {
		t.Errorf("not the last %d lines of output:\n%s", ttyLogLines, strings.Join(v, "\n"))
	}
}

// Output that rewrites its line (a progress bar) shows its last state;
// escape sequences and control characters of the output never reach the
// terminal; wide characters count two cells.
func TestTTYOutputLines(t *testing.T) {
	r := NewTTY(io.Discard, Options{Interval: time.Hour, NoColor: true, Now: func() time.Time { return t0 }})
	defer r.Close()
	d := digest.FromString("curl")
	emit := func(s string) {
		r.Emit(Event{Vertex: d, Name: "[1/1] RUN curl", Status: Log, Stream: 2, Time: t0, Data: []byte(s)})
	}
	r.Emit(Event{Vertex: d, Name: "[1/1] RUN curl", Status: Started, Time: t0})
	emit("get\n 10%\r 20%")
	emit("\r 30%")
	v := lockedView(r, t0, 40, 24)
	if got := strings.Join(v[2:], "|"); got != " => => # get| => => #  30%" {
		t.Errorf("progress bar: %q", got)
	}
	emit("\r100%\r\n\x1b[1mbold\x1b[0m\ttab\a\x1b]0;title\x07\n")
	emit("漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字漢字\n")
	v = lockedView(r, t0, 40, 24)
	want := []string{" => => # get", " => => # 100%", " => => # bold    tab", " => => # 漢字漢字漢字漢字漢字漢字漢字漢"}
	if got := v[2:]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("output lines\n%q\nwant\n%q", got, want)
	}
	if w := cellWidth(v[len(v)-1]); w > 39 {
		t.Errorf("a line of %d cells on a 40-cell terminal", w)
	}
}

// Messages written while the view is live (warnings) go above it.
func TestTTYWriter(t *testing.T) {
	var out bytes.Buffer
	r := NewTTY(&out, Options{Interval: time.Hour, NoColor: true, Now: func() time.Time { return t0 }})
	d := digest.FromString("pull")
	r.Emit(Event{Vertex: d, Name: "pull alpine", Status: Started, Time: t0})
	r.draw(false)
	fmt.Fprint(r.Writer(), "WARNING: first\nWARNING: sec")
	fmt.Fprint(r.Writer(), "ond\n")
	r.draw(false)
	fmt.Fprint(r.Writer(), "WARNING: unterminated")
	r.Emit(Event{Vertex: d, Name: "pull alpine", Status: Done, Time: t0.Add(time.Second)})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(r.Writer(), "after\n")
	want := "WARNING: first\nWARNING: second\nWARNING: unterminated\n" +
		"[+] Building 0.0s (1/1) FINISHED\n" +
		fmt.Sprintf("%-75s1.0s\n", " => #1 pull alpine") + // 79 cells of 80
		"strata: 1 step: 1 run, 0 cached; slowest: 1.0s #1 pull alpine\n" +
		"after\n"
	if got := emulate(out.Bytes()).text(); got != want {
		t.Errorf("screen\n%s\nwant\n%s", got, want)
	}
}

// BenchmarkTTYEmit measures Emit of a step's 1000 lines of output, as
// 1000 events of a line and as one event of 1000 lines, while the view is
// drawn ten times a second.
func BenchmarkTTYEmit(b *testing.B) {
	var out []byte
	for i := range 1000 {
		out = fmt.Appendf(out, "%04d compiling some/package/file_%d.go with a line of ordinary length\n", i, i)
	}
	lines := bytes.SplitAfter(out, []byte("\n"))[:1000]
	d := digest.FromString("make")
	for _, bc := range []struct {
		name   string
		chunks [][]byte
	}{{"line-events", lines}, {"one-event", [][]byte{out}}} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewTTY(io.Discard, Options{})
			defer r.Close()
			r.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Started, Time: time.Now()})
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				for _, c := range bc.chunks {
					r.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Log, Stream: 1, Time: now, Data: c})
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/line")
		})
	}
}

// A step that moved bytes (a pull, a push, an export) says how many on its
// finished line, beside its time.
func TestTTYShowsBytesMoved(t *testing.T) {
	var buf bytes.Buffer
	start := time.Unix(1000, 0)
	r := NewTTY(&buf, Options{NoColor: true, NoSummary: true, Interval: time.Hour, Size: func() (int, int) { return 80, 24 }})
	d := digest.FromString("push")
	r.Emit(Event{Vertex: d, Name: "pushing 127.0.0.1:5000/app:1", Status: Started, Time: start})
	r.Emit(Event{Vertex: d, Name: "pushing 127.0.0.1:5000/app:1", Status: Done, Time: start.Add(1500 * time.Millisecond), Bytes: 2_100_000})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if s := emulate(buf.Bytes()).text(); !strings.Contains(s, "pushing 127.0.0.1:5000/app:1") || !strings.Contains(s, "2.1MB  1.5s") {
		t.Errorf("finished line without its bytes:\n%s", s)
	}
	for n, want := range map[int64]string{999: "999B", 1000: "1.0kB", 52_428_800: "52.4MB", 3 << 30: "3.2GB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
