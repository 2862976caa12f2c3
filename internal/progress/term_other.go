//go:build !linux

package progress

import "os"

// IsTerminal reports whether f is a terminal; strata only knows how to
// tell on Linux.
func IsTerminal(f *os.File) bool { return false }

// terminalSize returns the width and height of the terminal f, or false.
func terminalSize(f *os.File) (width, height int, ok bool) { return 0, 0, false }
