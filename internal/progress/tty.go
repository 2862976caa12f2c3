package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	digest "github.com/opencontainers/go-digest"
)

const (
	// ttyLogLines is how many lines of its output a running step shows.
	ttyLogLines = 6
	// keepLines is how many lines of output a step keeps, for the report
	// of its failure; older lines are dropped.
	keepLines = 1000
	// maxLineBytes is where a longer line of output is cut.
	maxLineBytes = 4096
	// keepMessages is how many lines written to TTY.Writer wait for the
	// next frame; older lines are dropped.
	keepMessages = 1000
)

// Escape sequences of the view.
const (
	csi       = "\x1b["
	clearLine = csi + "K" // erase to the end of the line
	clearDown = csi + "J" // erase to the end of the screen
	colorDone = csi + "34m"
	colorErr  = csi + "31m"
	colorStop = csi + "33m"
	colorLog  = csi + "90m"
	colorOff  = csi + "0m"
)

// TTY renders events as a live view on a terminal, redrawn in place at
// most ten times a second, in the shape of BuildKit's tty progress:
//
//	[+] Building 12.3s (5/9)
//	 => #1 [internal] load build context                      0.1s
//	 => #2 CACHED [1/4] FROM docker.io/library/alpine
//	 => #4 [3/4] RUN make                                      3.4s
//	 => => # cc -c main.c
//	 => => # cc -o app main.o
//
// Each running step has its timer and the last six lines of its output;
// an ended step is one line with its time, CACHED, or ERROR. Lines are cut
// to the terminal's width, queried before every frame; when the view is
// taller than the terminal, output lines then the oldest ended steps make
// way.
//
// Emit only records the event: a step keeps its last 1000 lines of output
// (for the report of a failure) and forgets them when it is done. A
// separate goroutine draws the frames: a slow terminal drops frames, never
// events, and never slows the build.
//
// Close draws a final frame with every step on one line (a step still
// running is CANCELED), then, for each failed step, the output it kept,
// then the summary.
type TTY struct {
	w        *errWriter
	file     *os.File // w, when it is a file: its size is the terminal's
	color    bool
	summary  bool
	interval time.Duration
	sizeFn   func() (int, int)
	now      func() time.Time
	start    time.Time

	mu         sync.Mutex
	vertices   map[digest.Digest]*ttyVertex
	order      []*ttyVertex
	ended      int // vertices cached, done or failed
	msgs       lineRing
	msgPartial []byte
	closed     bool

	stop   chan struct{}
	exited chan struct{}

	drawMu sync.Mutex // held while a frame is drawn; guards the fields below
	shown  int        // lines of the view on screen
	held   bool       // no frames are drawn (see hold)
}

type ttyVertex struct {
	id      int
	name    string
	status  Status // "" while only its output has been seen
	start   time.Time
	took    time.Duration
	bytes   int64 // moved, as its Done event says (a pull, a push, an export)
	out     lineRing
	partial [2][]byte // unterminated output per stream (stdout, stderr)
}

// NewTTY returns a TTY renderer writing to w, and starts drawing. Of o, it
// heeds NoColor, NoSummary, Interval, Size and Now.
func NewTTY(w io.Writer, o Options) *TTY {
	t := &TTY{
		w:        &errWriter{w: w},
		color:    !o.NoColor,
		summary:  !o.NoSummary,
		interval: o.Interval,
		sizeFn:   o.Size,
		now:      o.Now,
		vertices: map[digest.Digest]*ttyVertex{},
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	t.file, _ = w.(*os.File)
	if t.interval <= 0 {
		t.interval = 100 * time.Millisecond
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.start = t.now()
	go t.loop()
	return t
}

// Emit records one event; the next frame shows it.
func (t *TTY) Emit(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	v, ok := t.vertices[e.Vertex]
	if !ok {
		v = &ttyVertex{id: len(t.order) + 1, name: e.Name, start: e.Time}
		if v.name == "" {
			v.name = string(e.Vertex)
		}
		t.vertices[e.Vertex] = v
		t.order = append(t.order, v)
	}
	switch e.Status {
	case Started:
		if v.hasEnded() {
			t.ended--
		}
		v.status, v.start, v.took = Started, e.Time, 0
	case Cached:
		t.end(v, Cached, e.Time)
	case Done:
		t.end(v, Done, e.Time)
		v.bytes = e.Bytes
		v.out, v.partial = lineRing{}, [2][]byte{}
	case Error:
		for s, p := range v.partial {
			if len(p) > 0 {
				v.addLine(p)
				v.partial[s] = nil
			}
		}
		t.end(v, Error, e.Time)
	case Log:
		v.write(e.Stream, e.Data)
	}
}

func (t *TTY) end(v *ttyVertex, s Status, at time.Time) {
	if !v.hasEnded() {
		t.ended++
	}
	v.status = s
	if s != Cached && at.After(v.start) {
		v.took = at.Sub(v.start)
	}
}

func (v *ttyVertex) hasEnded() bool {
	return v.status == Cached || v.status == Done || v.status == Error
}

// write keeps the complete lines of data and the unterminated rest.
func (v *ttyVertex) write(stream int, data []byte) {
	s := 0
	if stream == 2 {
		s = 1
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			p := append(v.partial[s], data...)
			if len(p) > maxLineBytes {
				// A progress bar rewrites its line with \r: keep the
				// last state; a line with none is cut where it is.
				if seg := lastSegment(p); len(seg) <= maxLineBytes {
					p = p[:copy(p, seg)]
				} else {
					v.addLine(p)
					p = p[:0]
				}
			}
			v.partial[s] = p
			return
		}
		line := data[:i]
		if len(v.partial[s]) > 0 {
			line = append(v.partial[s], line...)
			v.partial[s] = line[:0]
		}
		v.addLine(line)
		data = data[i+1:]
	}
}

func (v *ttyVertex) addLine(b []byte) {
	b = lastSegment(b)
	if len(b) > maxLineBytes {
		b = b[:maxLineBytes]
	}
	v.out.push(b, keepLines)
}

// tail returns the last n lines of v's output, oldest first, with the
// unterminated ones last.
func (v *ttyVertex) tail(n int) [][]byte {
	lines := v.out.last(n)
	for _, p := range v.partial {
		if seg := lastSegment(p); len(seg) > 0 {
			lines = append(lines, seg)
		}
	}
	return lines[max(0, len(lines)-n):]
}

// lastSegment returns what a terminal would show of a line that rewrites
// itself with carriage returns: the text after the last one.
func lastSegment(b []byte) []byte {
	b = bytes.TrimRight(b, "\r")
	if i := bytes.LastIndexByte(b, '\r'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// Writer returns a writer for messages (warnings) that must not tear the
// view: their lines are shown above it at the next frame. After Close it
// writes straight through.
func (t *TTY) Writer() io.Writer { return ttyWriter{t} }

type ttyWriter struct{ t *TTY }

func (w ttyWriter) Write(p []byte) (int, error) {
	t := w.t
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.w.Write(p)
	}
	defer t.mu.Unlock()
	buf := append(t.msgPartial, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		t.msgs.push(buf[:i], keepMessages)
		buf = buf[i+1:]
	}
	t.msgPartial = append(t.msgPartial[:0], buf...)
	return len(p), nil
}

// Close draws the final frame, the output of the failed steps and the
// summary, and stops drawing. Events after Close are dropped.
func (t *TTY) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.w.firstErr()
	}
	t.closed = true
	if len(t.msgPartial) > 0 {
		t.msgs.push(t.msgPartial, keepMessages)
		t.msgPartial = nil
	}
	t.mu.Unlock()
	close(t.stop)
	<-t.exited
	t.draw(true)
	return t.w.firstErr()
}

// hold draws a frame of what happened so far and then none until
// release, leaving the terminal below it to someone else; events are still
// recorded.
func (t *TTY) hold() {
	t.draw(false)
	t.drawMu.Lock()
	t.held = true
	t.drawMu.Unlock()
}

// release draws frames again, the next one below what was written while
// they were held.
func (t *TTY) release() {
	t.drawMu.Lock()
	if t.held {
		t.held, t.shown = false, 0
	}
	t.drawMu.Unlock()
}

// loop draws a frame every interval until Close. A frame that takes
// longer than an interval to write makes the ticker drop ticks.
func (t *TTY) loop() {
	defer close(t.exited)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.draw(false)
		}
	}
}

// draw renders a frame under the lock and writes it without: Emit waits
// at most for the rendering of one frame, never for the terminal.
func (t *TTY) draw(final bool) {
	t.drawMu.Lock()
	defer t.drawMu.Unlock()
	if t.held {
		if !final {
			return
		}
		t.held, t.shown = false, 0
	}
	width, height := t.size()
	t.mu.Lock()
	buf := t.render(t.now(), width, height, final)
	t.mu.Unlock()
	if len(buf) > 0 {
		t.w.Write(buf)
	}
}

// size returns the terminal's width and height: from Options.Size, from
// the output's terminal, or 80x24.
func (t *TTY) size() (width, height int) {
	switch {
	case t.sizeFn != nil:
		width, height = t.sizeFn()
	case t.file != nil:
		width, height, _ = terminalSize(t.file)
	}
	if width <= 0 {
		width = 80
	}
	if height <= 0 {
		height = 24
	}
	return max(width, 20), max(height, 4)
}

// render returns the bytes of one frame: the cursor goes back to the top
// of the last view, the waiting messages are printed above, then the view
// replaces the old one. The final frame has every step on one line and is
// followed by the failure reports and the summary.
func (t *TTY) render(now time.Time, width, height int, final bool) []byte {
	msgs := t.msgs.last(len(t.msgs.lines))
	if len(msgs) == 0 && len(t.order) == 0 {
		return nil
	}
	var b bytes.Buffer
	if t.shown > 0 {
		fmt.Fprintf(&b, "\r"+csi+"%dA", t.shown)
	}
	if t.msgs.dropped > 0 {
		fmt.Fprintf(&b, "(%d earlier lines of messages dropped)"+clearLine+"\n", t.msgs.dropped)
	}
	for _, m := range msgs {
		b.Write(bytes.TrimRight(m, "\r"))
		b.WriteString(clearLine + "\n")
	}
	t.msgs = lineRing{}
	if len(t.order) == 0 {
		t.shown = 0
		b.WriteString(clearDown)
		return b.Bytes()
	}
	cells := width - 1 // a line that fills the last column wraps on some terminals
	view := t.view(now, cells, height-1, final)
	for _, l := range view {
		b.WriteString(l)
		b.WriteString(clearLine + "\n")
	}
	b.WriteString(clearDown)
	t.shown = len(view)
	if final {
		t.shown = 0
		t.reports(&b)
		if s := summary(t.steps(now)); s != "" && t.summary {
			b.WriteString(s + "\n")
		}
	}
	return b.Bytes()
}

// view returns the lines of the view, at most rows of them unless final.
func (t *TTY) view(now time.Time, cells, rows int, final bool) []string {
	header := fmt.Sprintf("[+] Building %.1fs (%d/%d)", now.Sub(t.start).Seconds(), t.ended, len(t.order))
	if final {
		end := " FINISHED"
		for _, v := range t.order {
			if v.status == Error {
				end = " FAILED"
			}
		}
		header += end
	}
	lines := []string{t.paint(clipText(header, cells), "")}
	if final {
		for _, v := range t.order {
			lines = append(lines, t.stepLine(v, now, cells, true))
		}
		return lines
	}
	// Fit the view to the terminal: fewer output lines per running step,
	// then fewer ended steps (the oldest go first), then fewer running
	// steps.
	logs := ttyLogLines
	count := func(n int) int {
		c := 1 + len(t.order)
		for _, v := range t.order {
			if !v.hasEnded() {
				c += min(n, len(v.out.lines)+v.partialLines())
			}
		}
		return c
	}
	for logs > 0 && count(logs) > rows {
		logs--
	}
	skip := max(0, count(logs)-rows)
	for _, v := range t.order {
		if skip > 0 && v.hasEnded() {
			skip--
			continue
		}
		lines = append(lines, t.stepLine(v, now, cells, false))
		if !v.hasEnded() && logs > 0 {
			for _, l := range v.tail(logs) {
				lines = append(lines, t.paint(" => => # "+clipText(string(l), cells-9), colorLog))
			}
		}
	}
	if extra := len(lines) - rows; extra > 0 {
		lines = append(lines[:1], lines[1+extra:]...)
	}
	return lines
}

func (v *ttyVertex) partialLines() int {
	n := 0
	for _, p := range v.partial {
		if len(lastSegment(p)) > 0 {
			n++
		}
	}
	return n
}

// stepLine is a step's line: its number, state and name on the left, its
// time on the right, cut to cells.
func (t *TTY) stepLine(v *ttyVertex, now time.Time, cells int, final bool) string {
	word, color, took := "", "", v.took
	switch v.status {
	case Cached:
		word, color = "CACHED ", colorDone
	case Done:
		color = colorDone
	case Error:
		word, color = "ERROR ", colorErr
	default:
		took = now.Sub(v.start)
		if final {
			word, color = "CANCELED ", colorStop
		}
	}
	left := fmt.Sprintf(" => #%d %s", v.id, word)
	right := ""
	if v.status != Cached {
		right = fmt.Sprintf("%.1fs", max(took, 0).Seconds())
	}
	if v.status == Done && v.bytes > 0 {
		right = sizeText(v.bytes) + "  " + right
	}
	room := cells - cellWidth(left) - len(right) - 1
	if room < 4 {
		return t.paint(clipText(left+v.name+" "+right, cells), color)
	}
	name := clipText(v.name, room)
	pad := strings.Repeat(" ", room-cellWidth(name)+1)
	if right == "" {
		pad = ""
	}
	return t.paint(left+name+pad+right, color)
}

func (t *TTY) paint(s, color string) string {
	if !t.color || color == "" {
		return s
	}
	return color + s + colorOff
}

// reports writes, for each failed step, the output it kept.
func (t *TTY) reports(b *bytes.Buffer) {
	for _, v := range t.order {
		if v.status != Error || len(v.out.lines) == 0 {
			continue
		}
		fmt.Fprintf(b, "------\n > #%d %s:\n", v.id, clipText(v.name, 1<<20))
		if v.out.dropped > 0 {
			fmt.Fprintf(b, "(%d earlier lines not kept)\n", v.out.dropped)
		}
		for _, l := range v.out.last(len(v.out.lines)) {
			b.WriteString(clipText(string(l), 1<<20))
			b.WriteByte('\n')
		}
		b.WriteString("------\n")
	}
}

// steps returns how each step ended, for the summary.
func (t *TTY) steps(now time.Time) []stepEnd {
	out := make([]stepEnd, 0, len(t.order))
	for _, v := range t.order {
		s := stepEnd{id: v.id, name: v.name, status: v.status, took: v.took}
		if !v.hasEnded() {
			s.status, s.took = Started, now.Sub(v.start)
		}
		out = append(out, s)
	}
	return out
}

// lineRing keeps the last lines written to it, reusing their memory.
type lineRing struct {
	lines   [][]byte
	head    int // the oldest line, once the ring is full
	dropped int // lines pushed out
}

// push adds a copy of b, dropping the oldest line if the ring holds max.
func (r *lineRing) push(b []byte, max int) {
	if len(r.lines) < max {
		r.lines = append(r.lines, append([]byte(nil), b...))
		return
	}
	r.lines[r.head] = append(r.lines[r.head][:0], b...)
	r.head = (r.head + 1) % len(r.lines)
	r.dropped++
}

// last returns the n newest lines, oldest first. They are the ring's
// memory: use them before the next push.
func (r *lineRing) last(n int) [][]byte {
	n = min(n, len(r.lines))
	out := make([][]byte, 0, n+2)
	for i := len(r.lines) - n; i < len(r.lines); i++ {
		out = append(out, r.lines[(r.head+i)%len(r.lines)])
	}
	return out
}

// clipText makes s safe to print on one line of a terminal and at most
// cells wide: escape sequences and control characters are dropped, tabs
// become spaces, invalid UTF-8 becomes U+FFFD.
func clipText(s string, cells int) string {
	var b strings.Builder
	w := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == 0x1b:
			i = skipEscape(s, i)
			continue
		case r == '\t':
			n := 4 - w%4
			if w+n > cells {
				return b.String()
			}
			b.WriteString("    "[:n])
			w += n
			continue
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
			continue
		}
		rw := runeCells(r)
		if w+rw > cells {
			break
		}
		b.WriteRune(r)
		w += rw
	}
	return b.String()
}

// skipEscape returns the index after the escape sequence whose ESC is
// just before s[i]: a CSI sequence up to its final byte, an OSC or other
// string up to its terminator, else one character.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		for i++; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']', 'P', '_', '^', 'X':
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	}
	return i + 1
}

// cellWidth is the number of terminal cells s takes, s being text that
// clipText has made safe.
func cellWidth(s string) int {
	w := 0
	for _, r := range s {
		w += runeCells(r)
	}
	return w
}

// runeCells is how many cells r takes: two for the wide characters of
// East Asian scripts and emoji, one for the rest (combining marks are not
// told apart).
func runeCells(r rune) int {
	switch {
	case r >= 0x1100 && r <= 0x115f,
		r >= 0x2e80 && r <= 0xa4cf && r != 0x303f,
		r >= 0xac00 && r <= 0xd7a3,
		r >= 0xf900 && r <= 0xfaff,
		r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60,
		r >= 0xffe0 && r <= 0xffe6,
		r >= 0x1f300 && r <= 0x1f64f,
		r >= 0x1f900 && r <= 0x1f9ff,
		r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}

// sizeText is a byte count as docker prints sizes: "1.2MB", "512B".
func sizeText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%cB", f, "kMGT"[i-1])
}
