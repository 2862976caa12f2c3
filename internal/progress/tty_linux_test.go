package progress

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of width x height cells: the view is
// written to tty; what a terminal would receive is read from pt.
func openPTY(t *testing.T, width, height int) (pt, tty *os.File) {
	t.Helper()
	pt, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	n := -1
	control(pt, func(fd int) {
		if err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		}
	})
	if err != nil {
		pt.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		pt.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close(); pt.Close() })
	resizePTY(t, pt, width, height)
	return pt, tty
}

func resizePTY(t *testing.T, pt *os.File, width, height int) {
	t.Helper()
	var err error
	control(pt, func(fd int) {
		err = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// terminal collects what the pseudo-terminal receives.
type terminal struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (term *terminal) read(pt *os.File) {
	b := make([]byte, 4096)
	for {
		n, err := pt.Read(b)
		term.mu.Lock()
		term.buf.Write(b[:n])
		term.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (term *terminal) bytes() []byte {
	term.mu.Lock()
	defer term.mu.Unlock()
	return bytes.Clone(term.buf.Bytes())
}

// waitFor waits until the screen satisfies ok and returns it.
func (term *terminal) waitFor(t *testing.T, what string, ok func(screen string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := emulate(term.bytes()).text()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %s:\n%s", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var runTimer = regexp.MustCompile(`=> #1 \[1/3\] RUN make +([0-9.]+)s`)

func timerOf(screen string) float64 {
	m := runTimer.FindAllStringSubmatch(screen, -1)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return f
}

// The view drawn into a real pseudo-terminal: a running step's timer
// advances and its output shows under it; a finished step collapses to
// one line; a cached one says CACHED; lines follow the terminal's width,
// also after a resize; Close leaves the final frame and the summary.
func TestTTYPseudoTerminal(t *testing.T) {
	pt, tty := openPTY(t, 60, 20)
	if !IsTerminal(tty) {
		t.Fatal("IsTerminal(pty) = false")
	}
	if f, err := os.CreateTemp(t.TempDir(), ""); err != nil || IsTerminal(f) {
		t.Fatalf("IsTerminal(regular file) = true or %v", err)
	}
	term := &terminal{}
	go term.read(pt)
	r := NewTTY(tty, Options{Interval: 20 * time.Millisecond})
	mk, from, long := digest.FromString("make"), digest.FromString("from"), digest.FromString("long")
	r.Emit(Event{Vertex: mk, Name: "[1/3] RUN make", Status: Started, Time: time.Now()})
	term.waitFor(t, "the running step", func(s string) bool { return timerOf(s) >= 0 })
	first := timerOf(term.waitFor(t, "a timer", func(s string) bool { return timerOf(s) >= 0 }))
	term.waitFor(t, "the timer advancing", func(s string) bool { return timerOf(s) > first })

	r.Emit(Event{Vertex: mk, Name: "[1/3] RUN make", Status: Log, Stream: 1, Time: time.Now(), Data: []byte("cc -c main.c\n\x1b[31mcc -o app\x1b[0m\n")})
	r.Emit(Event{Vertex: from, Name: "[2/3] FROM alpine", Status: Cached, Time: time.Now()})
	s := term.waitFor(t, "output and a cached step", func(s string) bool {
		return strings.Contains(s, "=> => # cc -o app\n") && strings.Contains(s, "=> #2 CACHED [2/3] FROM alpine")
	})
	if !strings.Contains(s, "=> => # cc -c main.c\n") {
		t.Errorf("first output line missing:\n%s", s)
	}

	r.Emit(Event{Vertex: mk, Name: "[1/3] RUN make", Status: Done, Time: time.Now()})
	term.waitFor(t, "the finished step on one line", func(s string) bool {
		return !strings.Contains(s, "cc -c main.c") && strings.Contains(s, "(2/2)")
	})

	resizePTY(t, pt, 40, 20)
	name := "[3/3] RUN " + strings.Repeat("x", 80)
	r.Emit(Event{Vertex: long, Name: name, Status: Started, Time: time.Now()})
	s = term.waitFor(t, "a long name cut to the new width", func(s string) bool { return strings.Contains(s, "=> #3 [3/3] RUN xxx") })
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "#3") && len([]rune(l)) > 39 {
			t.Errorf("line wider than the 40-column terminal allows: %q", l)
		}
	}
	r.Emit(Event{Vertex: long, Name: name, Status: Done, Time: time.Now()})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	s = term.waitFor(t, "the summary", func(s string) bool { return strings.Contains(s, "strata: 3 steps") })
	t.Logf("screen:\n%s", s)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	final := lines[len(lines)-5:]
	for i, want := range []string{`^\[\+\] Building [0-9.]+s \(3/3\) FINISHED$`, `^ => #1 \[1/3\] RUN make +[0-9.]+s$`, `^ => #2 CACHED \[2/3\] FROM alpine$`, `^ => #3 \[3/3\] RUN x+ +[0-9.]+s$`, `^strata: 3 steps: 2 run, 1 cached; slowest: `} {
		if !regexp.MustCompile(want).MatchString(final[i]) {
			t.Errorf("final line %d = %q, want %s\nscreen:\n%s", i, final[i], want, s)
		}
	}
	if strings.Count(s, "[+] Building") != 1 {
		t.Errorf("frames were not drawn over each other:\n%s", s)
	}
	if raw := term.bytes(); !bytes.Contains(raw, []byte(colorDone)) {
		t.Errorf("no colour on a terminal: %q", raw)
	}
	// Output never goes to the terminal after Close.
	r.Emit(Event{Vertex: mk, Name: "late", Status: Started, Time: time.Now()})
	time.Sleep(50 * time.Millisecond)
	if after := emulate(term.bytes()).text(); after != s {
		t.Errorf("screen changed after Close:\n%s", after)
	}
}
