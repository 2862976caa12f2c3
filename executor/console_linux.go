package executor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// A run with Spec.Tty talks to a new pseudo-terminal. The master side
// stays with the caller, where a Console joins it to the run's IO; the
// command gets the other side as its streams and controlling terminal.

// OpenPTY opens a new pseudo-terminal through the multiplexer ptmx
// (/dev/ptmx, or the ptmx of another devpts instance) and returns its two
// sides; neither becomes the caller's controlling terminal, both are
// close-on-exec, and the master is non-blocking (as NewConsole needs it).
func OpenPTY(ptmx string) (master, slave *os.File, err error) {
	// The master does not block, so that its reads go through Go's poller
	// and a Close interrupts them.
	m, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", ptmx, err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock pseudo-terminal: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, not by a path that
	// could name another devpts instance's.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open pseudo-terminal peer: %w", errno)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts"), nil
}

// terminalSize returns the size of r when it is a terminal.
func terminalSize(r io.Reader) (*unix.Winsize, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, false
	}
	var ws *unix.Winsize
	var err error
	control(f, func(fd int) { ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ) })
	return ws, err == nil && ws != nil
}

// control runs fn on f's descriptor without f.Fd, which would make it
// blocking; not at all if f is closed.
func control(f *os.File, fn func(fd int)) {
	if c, err := f.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { fn(int(fd)) })
	}
}

// Console joins the master side of a run's pseudo-terminal to the run's
// IO: what IO.Stdin gives is typed into the terminal, what the terminal
// prints goes to IO.Stdout. When IO.Stdin is a terminal, it is in raw mode
// (the run's terminal interprets the keys) until Close, and the run's
// terminal takes its size, now and whenever it changes (SIGWINCH).
type Console struct {
	master *os.File
	in     *os.File      // IO.Stdin when it is a terminal
	saved  *unix.Termios // its settings before raw mode
	winch  chan os.Signal
	stop   *os.File // closing it stops the copy of a file's input
	wake   *os.File
	inDone chan struct{} // closed when the copy of a file's input ended
	out    chan struct{} // closed when the terminal has no more output
}

// NewConsole starts copying between master and sio. master must be
// non-blocking when it is opened as an *os.File (OpenPTY's is), so that
// Close can interrupt its reads. The Console owns master; Close it once the
// run has ended.
func NewConsole(master *os.File, sio IO) (*Console, error) {
	c := &Console{master: master, out: make(chan struct{})}
	if f, ok := sio.Stdin.(*os.File); ok {
		if err := c.makeRaw(f); err != nil {
			master.Close()
			return nil, err
		}
	}
	if c.in != nil {
		c.resize()
		c.winch = make(chan os.Signal, 1)
		signal.Notify(c.winch, unix.SIGWINCH)
		go func() {
			for range c.winch {
				c.resize()
			}
		}()
	}
	out := sio.Stdout
	if out == nil {
		out = io.Discard
	}
	go func() {
		defer close(c.out)
		_, _ = io.Copy(out, master)
	}()
	switch in := sio.Stdin.(type) {
	case nil:
	case *os.File:
		r, w, err := os.Pipe()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.wake, c.stop = r, w
		c.inDone = make(chan struct{})
		go func() {
			defer close(c.inDone)
			copyInput(master, in, r)
		}()
	default:
		// A reader that is no file cannot be interrupted: the copy ends
		// with its input, or at its first write after Close.
		go func() { _, _ = io.Copy(master, in) }()
	}
	return c, nil
}

// makeRaw puts f in raw mode if it is a terminal, as cfmakeraw(3) does.
func (c *Console) makeRaw(f *os.File) error {
	var t *unix.Termios
	var err error
	control(f, func(fd int) { t, err = unix.IoctlGetTermios(fd, unix.TCGETS) })
	if t == nil || err != nil {
		return nil // not a terminal: nothing to set
	}
	saved := *t
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	control(f, func(fd int) { err = unix.IoctlSetTermios(fd, unix.TCSETS, t) })
	if err != nil {
		return fmt.Errorf("set terminal to raw mode: %w", err)
	}
	c.in, c.saved = f, &saved
	return nil
}

// resize gives the run's terminal the size of the input's.
func (c *Console) resize() {
	ws, ok := terminalSize(c.in)
	if !ok {
		return
	}
	control(c.master, func(fd int) { _ = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
}

// copyInput copies what in gives to w until in ends or wake is readable.
// It polls, so that stopping it leaves nothing blocked in a read of the
// caller's terminal that would swallow what is typed next.
func copyInput(w io.Writer, in, wake *os.File) {
	var inFd, wakeFd int
	control(in, func(fd int) { inFd = fd })
	control(wake, func(fd int) { wakeFd = fd })
	buf := make([]byte, 4096)
	for {
		fds := []unix.PollFd{{Fd: int32(inFd), Events: unix.POLLIN}, {Fd: int32(wakeFd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(inFd, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
	}
}

// outputGrace bounds the wait for the terminal's last output after the
// run: every process that held the terminal is gone by then, so the
// master reads the rest and then EIO at once. It is a failure bound.
const outputGrace = 5 * time.Second

// Close waits for the run's last output, stops the input, and restores
// the input terminal's settings. Call it after the run has ended.
func (c *Console) Close() error {
	select {
	case <-c.out:
	case <-time.After(outputGrace):
	}
	var err error
	if c.stop != nil {
		c.stop.Close()
	}
	if c.inDone != nil {
		<-c.inDone
	}
	if c.wake != nil {
		c.wake.Close()
	}
	if c.winch != nil {
		signal.Stop(c.winch)
		close(c.winch)
	}
	if c.saved != nil {
		control(c.in, func(fd int) { err = unix.IoctlSetTermios(fd, unix.TCSETS, c.saved) })
		if err != nil {
			err = fmt.Errorf("restore terminal: %w", err)
		}
	}
	if cerr := c.master.Close(); cerr != nil && !errors.Is(cerr, os.ErrClosed) && err == nil {
		err = cerr
	}
	<-c.out
	return err
}
