package xattr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/continuity/sysx"
	"github.com/strata-build/strata/internal/testutil"
	"golang.org/x/sys/unix"
)

// bigFile makes a file with a few small attributes and one of 10 KiB, on a
// file system that takes a value that large (ext4 without ea_inode does
// not: as root a tmpfs is mounted then).
func bigFile(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	big := []byte(strings.Repeat("v", 10<<10))
	if err := unix.Lsetxattr(p, "user.big", big, 0); err != nil {
		if os.Geteuid() != 0 || !(errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.E2BIG)) {
			tb.Skipf("no 10 KiB user xattrs here: %v", err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
			tb.Skipf("mount tmpfs: %v", err)
		}
		tb.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := unix.Lsetxattr(p, "user.big", big, 0); err != nil {
			tb.Skipf("no 10 KiB user xattrs on tmpfs: %v", err)
		}
	}
	for _, n := range []string{"user.a", "user.mime_type", "user.checksum"} {
		if err := unix.Lsetxattr(p, n, []byte("value of "+n), 0); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

// BenchmarkXattr reads bigFile with List and Get and with continuity's
// sysx.LListxattr and sysx.LGetxattr: the list, a small value, the 10 KiB
// value, and all of them. See the comment above List for the numbers.
func BenchmarkXattr(b *testing.B) {
	p := bigFile(b)
	impls := []struct {
		name string
		list func(string) ([]string, error)
		get  func(string, string) ([]byte, error)
	}{
		{"strata", List, Get},
		{"sysx", sysx.LListxattr, sysx.LGetxattr},
	}
	ops := []struct {
		name string
		run  func(list func(string) ([]string, error), get func(string, string) ([]byte, error)) error
	}{
		{"List", func(list func(string) ([]string, error), _ func(string, string) ([]byte, error)) error {
			_, err := list(p)
			return err
		}},
		{"Get-small", func(_ func(string) ([]string, error), get func(string, string) ([]byte, error)) error {
			_, err := get(p, "user.a")
			return err
		}},
		{"Get-10KiB", func(_ func(string) ([]string, error), get func(string, string) ([]byte, error)) error {
			_, err := get(p, "user.big")
			return err
		}},
		{"All", func(list func(string) ([]string, error), get func(string, string) ([]byte, error)) error {
			names, err := list(p)
			for _, n := range names {
				if err == nil {
					_, err = get(p, n)
				}
			}
			return err
		}},
	}
	for _, op := range ops {
		for _, im := range impls {
			b.Run("op="+op.name+"/impl="+im.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu := testutil.CPUTime()
				for b.Loop() {
					if err := op.run(im.list, im.get); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(testutil.CPUTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// TestReadAllSizeChangesBetweenCalls feeds readAll the calls of a value
// that grows between its size and its reading and then shrinks to nothing:
// readAll must read again with a larger buffer, and never into an empty one
// (which would only give the size) nor slice past the one it has.
func TestReadAllSizeChangesBetweenCalls(t *testing.T) {
	var calls []int
	values := []string{strings.Repeat("x", 300), strings.Repeat("x", 1000), "", "12345"}
	get := func(b []byte) (int, error) {
		calls = append(calls, len(b))
		v := values[min(len(calls)-1, len(values)-1)]
		if len(b) == 0 {
			return len(v), nil
		}
		if len(v) > len(b) {
			return 0, unix.ERANGE
		}
		return copy(b, v), nil
	}
	got, err := readAll(get, 256)
	if err != nil || string(got) != "12345" {
		t.Fatalf("readAll = %q, %v; want 12345", got, err)
	}
	if want := []int{0, 512, 0, 1024}; !slices.Equal(calls, want) {
		t.Errorf("buffer sizes %v, want %v", calls, want)
	}
}

// TestReadWhileValueChanges reads an attribute with Get, and with
// continuity's sysx.LGetxattr for comparison, while another thread keeps
// rewriting it as 300 bytes, nothing and one byte. Get must return one of
// those each time. sysx.LGetxattr can panic here (the value is empty when
// it asks the size, then it reads with an empty buffer, which returns the
// size of the value as it is now, and slices that far); the test counts
// those panics and logs them.
func TestReadWhileValueChanges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	values := []string{strings.Repeat("v", 300), "", "s"}
	if err := unix.Lsetxattr(p, "user.x", []byte(values[0]), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			if err := unix.Lsetxattr(p, "user.x", []byte(values[i%3]), 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { stop.Store(true); <-done }()
	budget := 2 * time.Second
	if testing.Short() {
		budget = 200 * time.Millisecond
	}
	for _, im := range []struct {
		name string
		get  func(string, string) ([]byte, error)
	}{
		{"Get", Get},
		{"sysx.LGetxattr", sysx.LGetxattr},
	} {
		calls, panics := 0, 0
		for end := time.Now().Add(budget / 2); time.Now().Before(end); {
			calls++
			v, err := func() (v []byte, err error) {
				defer func() {
					if r := recover(); r != nil {
						panics++
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return im.get(p, "user.x")
			}()
			if im.name == "Get" && (err != nil || !slices.Contains(values, string(v))) {
				t.Fatalf("Get = %d bytes, %v; want one of the values written", len(v), err)
			}
		}
		t.Logf("%s: %d panics in %d calls", im.name, panics, calls)
	}
}
