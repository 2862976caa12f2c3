package executortest

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor"
)

// Terminal is a pseudo-terminal standing for a person's: a test types into
// Master and reads what is shown there; the run under test gets Slave as
// its IO.
type Terminal struct {
	Master, Slave *os.File
	out           lockedBuffer
	done          chan struct{}
}

// NewTerminal opens a pseudo-terminal of rows x cols, closed when t ends.
func NewTerminal(t testing.TB, rows, cols uint16) *Terminal {
	t.Helper()
	m, s, err := executor.OpenPTY("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	term := &Terminal{Master: m, Slave: s, done: make(chan struct{})}
	term.Resize(t, rows, cols)
	go func() {
		defer close(term.done)
		_, _ = io.Copy(&term.out, m)
	}()
	t.Cleanup(func() {
		s.Close()
		m.Close()
		<-term.done
	})
	return term
}

// Resize sets the terminal's size, as a terminal window does.
func (term *Terminal) Resize(t testing.TB, rows, cols uint16) {
	t.Helper()
	c, err := term.Slave.SyscallConn()
	if err == nil {
		c.Control(func(fd uintptr) {
			err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Type writes s as typed keys.
func (term *Terminal) Type(t testing.TB, s string) {
	t.Helper()
	if _, err := term.Master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// Output is everything shown so far.
func (term *Terminal) Output() string { return term.out.String() }

// WaitFor waits until the output contains want, and fails t after d.
func (term *Terminal) WaitFor(t testing.TB, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(term.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", want, term.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Termios returns the terminal's settings, as the run's side sees them.
func (term *Terminal) Termios(t testing.TB) *unix.Termios {
	t.Helper()
	var tio *unix.Termios
	c, err := term.Slave.SyscallConn()
	if err == nil {
		c.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// testTty runs an interactive shell on a terminal: the shell's streams are
// a terminal of the sandbox's own, of the caller's terminal's size; what is
// typed reaches it; the caller's terminal is raw while it runs, restored
// after; and a resized window resizes the shell's terminal.
func (s *suite) testTty(t *testing.T) {
	term := NewTerminal(t, 33, 101)
	script := `tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-terminals
while read line; do
	[ "$line" = quit ] && exit 7
	echo "got:$line"; stty size
done`
	spec := executor.Spec{Args: []string{"/bin/sh", "-c", script}, Tty: true, Root: s.newRoot(t)}
	errc := make(chan error, 1)
	go func() {
		errc <- s.e.Run(context.Background(), spec, executor.IO{Stdin: term.Slave, Stdout: term.Slave, Stderr: term.Slave})
	}()
	term.WaitFor(t, "all-terminals", guard)
	if out := term.Output(); !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 101\r\n") {
		t.Errorf("the shell's tty and size (want /dev/pts/N and 33 101):\n%s", out)
	}
	if tio := term.Termios(t); tio.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Errorf("the caller's terminal is not raw during the run: lflag %#x", tio.Lflag)
	}
	term.Type(t, "hello\n")
	term.WaitFor(t, "got:hello", guard)
	// The resized window signals its foreground process group; this
	// process is not in it, so the test signals itself.
	term.Resize(t, 40, 120)
	deadline := time.Now().Add(guard)
	for !strings.Contains(term.Output(), "40 120") {
		if time.Now().After(deadline) {
			t.Fatalf("the shell's terminal never took the new size 40x120:\n%s", term.Output())
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		term.Type(t, "again\n")
		time.Sleep(50 * time.Millisecond)
	}
	term.Type(t, "quit\n")
	select {
	case err := <-errc:
		if code := exitCode(t, err); code != 7 {
			t.Errorf("exit code %d, want 7", code)
		}
	case <-time.After(guard):
		t.Fatal("the shell did not exit")
	}
	if tio := term.Termios(t); tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("the caller's terminal was not restored: lflag %#x", tio.Lflag)
	}
}
