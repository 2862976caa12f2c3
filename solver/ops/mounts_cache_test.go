package ops

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

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
