//go:build linux

package runc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/executortest"
	"github.com/strata-build/strata/executor/runc"
	"github.com/strata-build/strata/mount"
)

func requireRunc(t testing.TB) {
	t.Helper()
	executortest.RequireRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
}

func newRuntime(t testing.TB) (*runc.Runtime, string) {
	t.Helper()
	state := t.TempDir()
	// The command is PID 1 and ignores an untrapped SIGTERM: a short
	// grace keeps the cancellation tests quick.
	rt, err := runc.New(runc.Options{StateDir: state, StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return rt, state
}

func overlayRoot(t testing.TB) []mount.Mount {
	ms, _ := executortest.OverlayRoot(t)
	return ms
}

func TestRuncConformance(t *testing.T) {
	requireRunc(t)
	rt, state := newRuntime(t)
	executortest.RunWith(t, rt, overlayRoot, executortest.Options{StateDir: state, CommandIsPID1: true})
}

func TestRuncCleansUp(t *testing.T) {
	requireRunc(t)
	rt, state := newRuntime(t)
	root, upper := executortest.OverlayRoot(t)
	spec := executor.Spec{Root: root, Args: []string{"/bin/sh", "-c", "echo hi > /tmp/out"},
		Mounts: []executor.Mount{{Dest: "/mnt/a/b", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}}}}
	if err := rt.Run(context.Background(), spec, executor.IO{}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(upper, "tmp/out")); err != nil || string(data) != "hi\n" {
		t.Errorf("tmp/out in the upper dir: %q, %v", data, err)
	}
	for _, stub := range []string{"mnt/a", "etc/hosts", "etc/resolv.conf", "etc/hostname"} {
		if _, err := os.Lstat(filepath.Join(upper, stub)); !os.IsNotExist(err) {
			t.Errorf("mount point %s left in the root: %v", stub, err)
		}
	}
	ents, _ := os.ReadDir(state)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "runc" {
		t.Errorf("state dir holds %q, want only runc's state", names)
	}
	owns, _ := filepath.Glob(filepath.Join(state, "runc", "*", "*"))
	if len(owns) != 1 || filepath.Base(owns[0]) != "root" {
		t.Errorf("runtime directory holds %q, want only runc's root", owns)
	}
	if out, err := exec.Command("runc", "--root", owns[0], "list", "-q").Output(); err != nil || len(out) != 0 {
		t.Errorf("runc still knows containers: %q %v", out, err)
	}
	if leaked := executortest.MountsUnder(t, state); len(leaked) > 0 {
		t.Errorf("mounts left on the host: %q", leaked)
	}
}

func TestRuncErrors(t *testing.T) {
	if _, err := runc.New(runc.Options{}); err == nil || err.Error() != "new runc runtime: no state dir" {
		t.Errorf("no state dir: got %v", err)
	}
	_, err := runc.New(runc.Options{StateDir: t.TempDir(), Binary: "no-such-runtime"})
	if err == nil || !strings.Contains(err.Error(), "no-such-runtime") {
		t.Errorf("missing binary: got %v", err)
	}
}

func BenchmarkRuncRunTrue(b *testing.B) {
	requireRunc(b)
	rt, _ := newRuntime(b)
	root := overlayRoot(b)
	ctx := context.Background()
	for b.Loop() {
		if err := rt.Run(ctx, executor.Spec{Args: []string{"/bin/true"}, Root: root}, executor.IO{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRuncRunTrueNetworkNone(b *testing.B) {
	requireRunc(b)
	rt, _ := newRuntime(b)
	root := overlayRoot(b)
	ctx := context.Background()
	for b.Loop() {
		spec := executor.Spec{Args: []string{"/bin/true"}, Root: root, Network: executor.NetworkNone}
		if err := rt.Run(ctx, spec, executor.IO{}); err != nil {
			b.Fatal(err)
		}
	}
}
