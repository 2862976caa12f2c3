// Package xattr reads extended attributes without following symlinks. A
// file system that has none (ENOTSUP) reads as having none; values of any
// size are read whole.
package xattr

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// List returns the names of p's extended attributes.
func List(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		var names []string
		for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

// Get returns the value of p's attribute name.
func Get(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		return buf[:n], nil
	}
}

// All returns every extended attribute of p, nil when it has none.
func All(p string) (map[string]string, error) {
	names, err := List(p)
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, name := range names {
		v, err := Get(p, name)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(v)
	}
	return out, nil
}
