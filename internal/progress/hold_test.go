package progress

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// A held TTY draws no frame until released, and the frame after that goes
// below what another program wrote meanwhile: the screen keeps both.
func TestHoldTTY(t *testing.T) {
	var out bytes.Buffer
	tty := NewTTY(&out, Options{Interval: time.Hour, NoColor: true, Now: func() time.Time { return t0 }})
	h := Holdable(tty)
	d := digest.FromString("run")
	h.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Started, Time: t0})
	h.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Log, Stream: 1, Time: t0, Data: []byte("compiling\n")})
	h.Hold()
	held := out.Len()
	if !strings.Contains(out.String(), "compiling") {
		t.Fatalf("Hold drew no frame of what happened so far: %q", out.String())
	}
	h.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Log, Stream: 1, Time: t0, Data: []byte("linking\n")})
	tty.draw(false) // a tick of the drawing loop
	if out.Len() != held {
		t.Fatalf("a held TTY drew: %q", out.String()[held:])
	}
	out.WriteString("$ shell session\n")
	h.Release()
	h.Emit(Event{Vertex: d, Name: "[1/1] RUN make", Status: Error, Time: t0.Add(time.Second), Err: "exit code: 2"})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	want := "[+] Building 0.0s (0/1)\n" +
		fmt.Sprintf("%-75s0.0s\n", " => #1 [1/1] RUN make") +
		" => => # compiling\n" +
		"$ shell session\n" +
		"[+] Building 0.0s (1/1) FAILED\n" +
		fmt.Sprintf("%-75s1.0s\n", " => #1 ERROR [1/1] RUN make") +
		"------\n > #1 [1/1] RUN make:\ncompiling\nlinking\n------\n" +
		"strata: 1 step: 0 run, 0 cached, 1 failed; slowest: 1.0s #1 RUN make\n"
	if got := emulate(out.Bytes()).text(); got != want {
		t.Errorf("screen\n%s\nwant\n%s", got, want)
	}
}

// A held Plain writes nothing; at Release it writes what came, in order.
func TestHoldPlain(t *testing.T) {
	var out bytes.Buffer
	h := Holdable(NewPlain(&out))
	d := digest.FromString("run")
	h.Emit(Event{Vertex: d, Name: "RUN a", Status: Started, Time: t0})
	h.Hold()
	before := out.String()
	h.Emit(Event{Vertex: d, Name: "RUN a", Status: Log, Stream: 1, Time: t0, Data: []byte("one\n")})
	h.Emit(Event{Vertex: d, Name: "RUN a", Status: Done, Time: t0.Add(time.Second)})
	if out.String() != before {
		t.Fatalf("a held Plain wrote %q", out.String()[len(before):])
	}
	h.Release()
	got := out.String()[len(before):]
	if i, j := strings.Index(got, "one"), strings.Index(got, "DONE 1.0s"); i < 0 || j < i {
		t.Errorf("after Release: %q, want the output then DONE", got)
	}
}
