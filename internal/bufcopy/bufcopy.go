// Package bufcopy copies bytes through pooled buffers. io.Copy between
// files falls back, when the kernel cannot splice or copy_file_range (an
// overlay lower, a hash), to a fresh 32 KiB buffer per call: copying or
// hashing 100,000 small files made gigabytes of garbage and a heap many
// times what the copy held.
package bufcopy

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const bufSize = 64 << 10

var pool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Copy copies src to dst until EOF through a pooled buffer.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	// Hiding ReadFrom and WriteTo makes io.CopyBuffer use the buffer.
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}

// CopyFile copies the rest of src into dst: in the kernel with
// copy_file_range where the filesystems allow it (a reflink on some), else
// through a pooled buffer.
func CopyFile(dst, src *os.File) (int64, error) {
	var n int64
	for {
		c, err := unix.CopyFileRange(int(src.Fd()), nil, int(dst.Fd()), nil, 1<<30, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if n == 0 && fallback(err) {
				m, err := Copy(dst, src)
				return n + m, err
			}
			return n, &os.PathError{Op: "copy_file_range", Path: src.Name(), Err: err}
		}
		if c == 0 {
			return n, nil
		}
		n += int64(c)
	}
}

// fallback reports whether copy_file_range refused the pair of files
// rather than failed on them.
func fallback(err error) bool {
	for _, e := range []error{unix.ENOSYS, unix.EXDEV, unix.EINVAL, unix.EOPNOTSUPP, unix.EBADF, unix.EPERM, unix.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
