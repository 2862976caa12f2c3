package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/llb"
)

func TestLockCachePrivateTakesAFreeInstance(t *testing.T) {
	base := filepath.Join(t.TempDir(), "c")
	ctx := context.Background()
	dir0, l0, err := lockCache(ctx, base, llb.SharingPrivate)
	if err != nil {
		t.Fatal(err)
	}
	dir1, l1, err := lockCache(ctx, base, llb.SharingPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if dir0 != base || dir1 != base+".p1" {
		t.Errorf("private instances %s, %s; want %s, %s.p1", dir0, dir1, base, base)
	}
	l0.Close()
	dir2, l2, err := lockCache(ctx, base, llb.SharingPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if dir2 != base {
		t.Errorf("a released instance is not reused: got %s", dir2)
	}
	l1.Close()
	l2.Close()
}

func TestLockCacheSharedAndLocked(t *testing.T) {
	base := filepath.Join(t.TempDir(), "c")
	ctx := context.Background()
	_, s1, err := lockCache(ctx, base, llb.SharingShared)
	if err != nil {
		t.Fatal(err)
	}
	_, s2, err := lockCache(ctx, base, llb.SharingShared)
	if err != nil {
		t.Fatalf("two shared users: %v", err)
	}
	// A private user does not get the busy shared dir.
	dir, p, err := lockCache(ctx, base, llb.SharingPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if dir == base {
		t.Error("private got the dir shared users hold")
	}
	p.Close()
	// A locked user waits for the shared ones; a cancelled wait gives up.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := lockCache(cctx, base, llb.SharingLocked); !errors.Is(err, context.Canceled) {
		t.Errorf("locked while shared users hold it: err %v, want context.Canceled", err)
	}
	s1.Close()
	s2.Close()
	_, l, err := lockCache(ctx, base, llb.SharingLocked)
	if err != nil {
		t.Fatalf("locked once free: %v", err)
	}
	if _, _, err := lockCache(cctx, base, llb.SharingShared); !errors.Is(err, context.Canceled) {
		t.Errorf("shared while locked: err %v, want context.Canceled", err)
	}
	l.Close()
}

func TestPrefixes(t *testing.T) {
	got := prefixes("/a/b/../c/d")
	want := []string{"/a", "/a/c", "/a/c/d"}
	if len(got) != len(want) {
		t.Fatalf("prefixes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("prefixes = %v, want %v", got, want)
		}
	}
	if p := prefixes("/"); len(p) != 0 {
		t.Errorf("prefixes(/) = %v", p)
	}
}

// A step that waits for a locked cache mount says so in a Waited event,
// with when the wait began.
func TestCacheMountReportsLockWait(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var waits []progress.Event
	w := &Worker{TempDir: dir, CacheMountDir: filepath.Join(dir, "cache"), Progress: progress.SinkFunc(func(e progress.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Status == progress.Waited {
			waits = append(waits, e)
		}
	})}
	if err := os.Mkdir(w.CacheMountDir, 0o755); err != nil {
		t.Fatal(err)
	}
	eop := &llb.ExecOp{Args: []string{"make"}}
	v := &llb.Vertex{Op: eop, Meta: llb.Meta{Name: "[2/2] RUN make"}}
	o := &execOp{w: w, v: v, op: eop}
	m := llb.Mount{Type: llb.MountCache, Dest: "/root/.cache", Input: -1, Cache: &llb.CacheMount{ID: "go", Sharing: llb.SharingLocked}}
	_, release, err := o.cacheMount(t.Context(), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	const hold = 200 * time.Millisecond
	got := make(chan error, 1)
	go func() {
		_, release, err := o.cacheMount(t.Context(), m, nil)
		if err == nil {
			release()
		}
		got <- err
	}()
	time.Sleep(hold)
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 2 {
		t.Fatalf("%d Waited events, want one per mount: %+v", len(waits), waits)
	}
	for _, e := range waits {
		if e.Vertex != v.Digest() || e.Name != v.Meta.Name || e.Lock != "cache mount /root/.cache (id go, locked)" || e.Since.IsZero() || e.Since.After(e.Time) {
			t.Errorf("Waited event %+v", e)
		}
	}
	if d := waits[0].Time.Sub(waits[0].Since); d >= hold/2 {
		t.Errorf("the first mount, free, waited %v", d)
	}
	if d := waits[1].Time.Sub(waits[1].Since); d < hold/2 {
		t.Errorf("the second mount waited %v for a lock held %v", d, hold)
	}
}
