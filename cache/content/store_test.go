package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ingestFiles(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReadRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, blob")
	d := digest.FromBytes(data)
	if err := s.WriteBlob(ctx, bytes.NewReader(data), int64(len(data)), d); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, d)
	if err != nil || info != (Info{Digest: d, Size: int64(len(data))}) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	got, err := s.ReadBlob(ctx, d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("blob file = %q, %v", onDisk, err)
	}
	// Idempotent: a second write of the same blob does not even read r.
	if err := s.WriteBlob(ctx, errReader{}, int64(len(data)), d); err != nil {
		t.Fatalf("second WriteBlob: %v", err)
	}
	if n := ingestFiles(t, s); len(n) != 0 {
		t.Fatalf("ingest debris after writes: %v", n)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read called") }

func TestBadWritesNeverLand(t *testing.T) {
	ctx := context.Background()
	data := []byte("the real content")
	d := digest.FromBytes(data)
	tests := []struct {
		name    string
		write   []byte
		size    int64
		wantErr string
	}{
		{"corrupt", []byte("the real c0ntent"), int64(len(data)), "digest mismatch"},
		{"short", data[:5], int64(len(data)), "size mismatch"},
		{"short unknown size", data[:5], -1, "digest mismatch"},
		{"long", append(append([]byte{}, data...), 'x'), int64(len(data)), "size mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			err := s.WriteBlob(ctx, bytes.NewReader(tt.write), tt.size, d)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("WriteBlob err = %v, want %q", err, tt.wantErr)
			}
			if _, err := s.Info(ctx, d); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("Info after bad write = %v, want errdefs.ErrNotFound", err)
			}
			if n := ingestFiles(t, s); len(n) != 0 {
				t.Fatalf("ingest debris after failed write: %v", n)
			}
		})
	}
}

func TestWriterReaderFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newStore(t)
	cancel()
	d := digest.FromString("x")
	if err := s.WriteBlob(ctx, strings.NewReader("x"), 1, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteBlob with cancelled ctx = %v", err)
	}
	if _, err := s.Info(context.Background(), d); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("blob landed despite cancel: %v", err)
	}
}

func TestWriterProgressAndCommit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, err := s.Writer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	io.WriteString(w, "abc")
	if w.Size() != 3 || w.Digest() != digest.FromString("abc") {
		t.Fatalf("Size/Digest = %d %s", w.Size(), w.Digest())
	}
	io.WriteString(w, "def")
	if err := w.Commit(6, digest.FromString("abcdef")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadBlob(ctx, digest.FromString("abcdef"))
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
}

func TestConcurrentWritersSameBlob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	d := digest.FromBytes(data)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			w, err := s.Writer(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
				errs[i] = err
				return
			}
			errs[i] = w.Commit(int64(len(data)), d)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got, err := s.ReadBlob(ctx, d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob after concurrent writes: len %d, %v", len(got), err)
	}
	if n := ingestFiles(t, s); len(n) != 0 {
		t.Fatalf("ingest debris: %v", n)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// A dead writer's debris: an unlocked file in ingest/.
	dead := filepath.Join(s.Root(), "ingest", "ingest-dead")
	if err := os.WriteFile(dead, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(dead, old, old)
	// A recent dead file, kept by olderThan.
	recent := filepath.Join(s.Root(), "ingest", "ingest-recent")
	os.WriteFile(recent, []byte("partial"), 0o644)
	// A live writer, older than the cutoff too.
	w, err := s.Writer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	io.WriteString(w, "live")
	os.Chtimes(w.path, old, old)

	if err := s.Sweep(time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("dead ingest survived sweep: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent ingest removed: %v", err)
	}
	if _, err := os.Stat(w.path); err != nil {
		t.Errorf("live ingest removed: %v", err)
	}
	// The live writer still commits after the sweep.
	if err := w.Commit(4, digest.FromString("live")); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(0); err != nil {
		t.Fatal(err)
	}
	if n := ingestFiles(t, s); len(n) != 0 {
		t.Fatalf("ingest after Sweep(0): %v", n)
	}
}

func TestSweepLeavesLockedIngest(t *testing.T) {
	s := newStore(t)
	p := filepath.Join(s.Root(), "ingest", "ingest-held")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("locked ingest removed: %v", err)
	}
}

func TestDeleteWalkNotFound(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var want []Info
	for _, c := range []string{"a", "b", "c"} {
		desc, err := s.Put(ctx, "text/plain", []byte(c))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Size != 1 || desc.MediaType != "text/plain" || desc.Digest != digest.FromString(c) {
			t.Fatalf("Put descriptor = %+v", desc)
		}
		want = append(want, Info{Digest: desc.Digest, Size: 1})
	}
	os.WriteFile(filepath.Join(s.Root(), "blobs", "sha256", "junk"), nil, 0o644)
	var got []Info
	if err := s.Walk(ctx, func(i Info) error { got = append(got, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Walk = %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Digest >= got[i].Digest {
			t.Fatalf("Walk not sorted: %v", got)
		}
	}
	if err := s.Delete(ctx, want[0].Digest); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Delete": s.Delete(ctx, want[0].Digest),
		"Info":   func() error { _, err := s.Info(ctx, want[0].Digest); return err }(),
		"Open":   func() error { _, err := s.Open(ctx, want[0].Digest); return err }(),
	} {
		if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), want[0].Digest.String()) {
			t.Errorf("%s of deleted blob = %v, want errdefs.ErrNotFound naming the digest", name, err)
		}
	}
	if _, err := s.Info(ctx, "sha256:nothex"); err == nil || errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Info of malformed digest = %v, want a validation error", err)
	}
}

func TestReadBlobDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	desc, err := s.Put(ctx, "text/plain", []byte("good"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.BlobPath(desc.Digest)
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("evil"), 0o644)
	if _, err := s.ReadBlob(ctx, desc.Digest); err == nil || !strings.Contains(err.Error(), "stored bytes have digest") {
		t.Fatalf("ReadBlob of corrupted blob = %v", err)
	}
}
