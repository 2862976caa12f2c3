package progress

import (
	"os"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	ok := false
	control(f, func(fd int) {
		_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		ok = err == nil
	})
	return ok
}

// terminalSize returns the width and height of the terminal f, or false.
func terminalSize(f *os.File) (width, height int, ok bool) {
	control(f, func(fd int) {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err == nil && ws.Col > 0 {
			width, height, ok = int(ws.Col), int(ws.Row), true
		}
	})
	return width, height, ok
}

// control runs fn on f's descriptor without f.Fd, which would make it
// blocking.
func control(f *os.File, fn func(fd int)) {
	if c, err := f.SyscallConn(); err == nil {
		c.Control(func(fd uintptr) { fn(int(fd)) })
	}
}
