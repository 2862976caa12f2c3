// Package xattr reads extended attributes without following symlinks. A
// file system that has none (ENOTSUP) reads as having none; values of any
// size are read whole.
package xattr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Why strata reads xattrs itself and not with continuity's sysx.LListxattr
// and sysx.LGetxattr, which have the same shape: sysx, after ERANGE, asks
// the size and reads into a buffer of exactly that size; when the value has
// become empty in between, that buffer is empty, the read only returns the
// current size, and sysx slices past its buffer and panics.
// TestReadWhileValueChanges, with another thread rewriting a value, logged
// 4 to 684 sysx panics per run of 70000 to 200000 calls (four runs), none
// from Get: readAll never reads into an empty buffer
// (TestReadAllSizeChangesBetweenCalls).
// The build context is a directory anyone may change during a build.
// Speed is the same within the noise of 2 shared cores (BenchmarkXattr,
// a file with three small xattrs and one of 10 KiB; benchstat of 15 runs,
// CPU time per op; in other runs single ops went 10-40% either way):
//
//	            strata    sysx
//	List        3.227µs   3.220µs  ~    (p=0.461)
//	Get small   3.074µs   2.768µs  -10% (p=0.019)
//	Get 10 KiB  14.81µs   15.93µs  ~    (p=0.461)
//	All four    28.18µs   29.91µs  +6%  (p=0.013)
//	geomean     8.021µs   8.072µs  +0.6%
//
// with fewer bytes (10.62 KiB vs 11.23 KiB) and allocations (21 vs 25) per
// file: the first call of each reads into a small buffer on the stack.

// List returns the names of p's extended attributes.
func List(p string) ([]string, error) {
	var small [256]byte // on the stack: the call is direct
	n, err := unix.Llistxattr(p, small[:])
	buf := small[:max(n, 0)]
	if errors.Is(err, unix.ERANGE) {
		buf, err = readAll(func(b []byte) (int, error) { return unix.Llistxattr(p, b) }, len(small))
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var names []string
	for name := range strings.SplitSeq(string(buf), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}

// Get returns the value of p's attribute name.
func Get(p, name string) ([]byte, error) {
	var small [256]byte // on the stack: the call is direct
	n, err := unix.Lgetxattr(p, name, small[:])
	if err == nil {
		return bytes.Clone(small[:n]), nil
	}
	var buf []byte
	if errors.Is(err, unix.ERANGE) {
		buf, err = readAll(func(b []byte) (int, error) { return unix.Lgetxattr(p, name, b) }, len(small))
	}
	if err != nil {
		return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
	}
	return buf, nil
}

// readAll reads a value that did not fit in a buffer of last bytes. It asks
// get for the size, calling it without a buffer, and reads into a buffer of
// that size and at least twice last, again while the value outgrows it
// between the two calls. It never reads into an empty buffer, where get
// would return the size of the value at that moment instead of reading it.
func readAll(get func([]byte) (int, error), last int) ([]byte, error) {
	for {
		need, err := get(nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, max(need, 2*last))
		n, err := get(buf)
		if errors.Is(err, unix.ERANGE) {
			last = len(buf)
			continue
		}
		if err != nil {
			return nil, err
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
