package bufcopy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 300<<10+7)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := CopyFile(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != int64(len(data)) {
		t.Fatalf("CopyFile = %d, %v", n, err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "dst"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy differs (%v)", err)
	}
}

// Hashing a small file costs no buffer of its own: the point of the
// package.
func TestCopyAllocatesNoBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops buffers on purpose")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("small file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	hash := func(copy func(w io.Writer, r io.Reader) (int64, error)) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			h.Reset()
			if _, err := copy(h, f); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 100
	}
	Copy(h, f) // the pool's first buffer
	if perCall := hash(Copy); perCall > 1024 {
		t.Errorf("Copy allocates %d bytes a call (io.Copy: %d)", perCall, hash(io.Copy))
	}
}
