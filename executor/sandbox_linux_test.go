package executor_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/executortest"
	"github.com/strata-build/strata/executor/network"
	"github.com/strata-build/strata/mount"
)

func TestMain(m *testing.M) {
	executor.MaybeInit()
	os.Exit(m.Run())
}

func newSandbox(t testing.TB) *executor.Sandbox {
	t.Helper()
	sb, err := executor.NewSandbox(executor.SandboxOptions{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestSandboxConformance(t *testing.T) {
	state := t.TempDir()
	sb, err := executor.NewSandbox(executor.SandboxOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	executortest.RunWith(t, sb, func(t testing.TB) []mount.Mount {
		ms, _ := executortest.OverlayRoot(t)
		return ms
	}, executortest.Options{StateDir: state})
}

func BenchmarkRunTrue(b *testing.B) {
	executortest.RequireRoot(b)
	sb := newSandbox(b)
	root, _ := executortest.OverlayRoot(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if err := sb.Run(ctx, executor.Spec{Args: []string{"/bin/true"}, Root: root}, executor.IO{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSandboxWritesLandInUpperDir(t *testing.T) {
	executortest.RequireRoot(t)
	state := t.TempDir()
	sb, err := executor.NewSandbox(executor.SandboxOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	root, upper := executortest.OverlayRoot(t)
	spec := executor.Spec{Root: root, Cwd: "/", Args: []string{"/bin/sh", "-c", "echo hi > /tmp/out && chmod 640 /tmp/out && chown 1000:2000 /tmp/out"}}
	if err := sb.Run(context.Background(), spec, executor.IO{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(upper, "tmp/out"))
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 1000 || sys.Gid != 2000 {
		t.Errorf("tmp/out: mode %v owner %d:%d", st.Mode(), sys.Uid, sys.Gid)
	}
	// Only what the command wrote is in the upper dir: no mount points.
	var got []string
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "etc", "tmp", "tmp/out"} // etc: copied up to hold /etc/hosts while mounted
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("upper dir holds %q, want %q", got, want)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state dir not cleaned: %v", ents)
	}
	if leaked := executortest.MountsUnder(t, state); len(leaked) > 0 {
		t.Errorf("mounts left on the host: %q", leaked)
	}
}

func TestSandboxErrors(t *testing.T) {
	executortest.RequireRoot(t)
	state := t.TempDir()
	sb, err := executor.NewSandbox(executor.SandboxOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	bad := []mount.Mount{{Type: "bind", Source: filepath.Join(state, "missing")}}
	err = sb.Run(context.Background(), executor.Spec{Args: []string{"true"}, Root: bad}, executor.IO{})
	if err == nil || !strings.Contains(err.Error(), "run true: mount root") {
		t.Errorf("bad root: got %v", err)
	}
	err = sb.Run(context.Background(), executor.Spec{Root: bad}, executor.IO{})
	if err == nil || err.Error() != "run: no command" {
		t.Errorf("no args: got %v", err)
	}
	if _, err := executor.NewSandbox(executor.SandboxOptions{}); err == nil {
		t.Error("NewSandbox without a state dir succeeded")
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state dir not cleaned: %v", ents)
	}
}

func TestSandboxConcurrentRuns(t *testing.T) {
	executortest.RequireRoot(t)
	sb := newSandbox(t)
	var g errgroup.Group
	outs := make([]strings.Builder, 4)
	for i := range outs {
		root, _ := executortest.OverlayRoot(t) // an upper dir serves one mount at a time
		g.Go(func() error {
			spec := executor.Spec{Root: root, Hostname: fmt.Sprintf("h%d", i), Args: []string{"/bin/sh", "-c", "hostname; echo $$"}}
			return sb.Run(context.Background(), spec, executor.IO{Stdout: &outs[i]})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range outs {
		// Each run has its own name and its own pid namespace, where only
		// the init's threads come before the command.
		host, pid, _ := strings.Cut(strings.TrimSpace(outs[i].String()), "\n")
		if n, err := strconv.Atoi(pid); host != fmt.Sprintf("h%d", i) || err != nil || n < 2 || n > 64 {
			t.Errorf("run %d: got %q", i, outs[i].String())
		}
	}
}

func TestSandboxNetworkFallback(t *testing.T) {
	executortest.RequireRoot(t)
	// Every block of a range the host's loopback covers is taken: the link
	// cannot be made.
	defer func(r netip.Prefix) { network.Range = r }(network.Range)
	network.Range = netip.MustParsePrefix("127.0.0.0/16")
	sb := newSandbox(t)
	root, _ := executortest.OverlayRoot(t)
	var out, errOut strings.Builder
	spec := executor.Spec{Root: root, Args: []string{"/bin/cat", "/proc/net/dev"}}
	if err := sb.Run(context.Background(), spec, executor.IO{Stdout: &out, Stderr: &errOut}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "eth0") || !strings.Contains(out.String(), "lo:") {
		t.Errorf("interfaces: %q, want loopback only", out.String())
	}
	warn := errOut.String()
	if !strings.HasPrefix(warn, "warning: network default: attach network to pid ") || !strings.HasSuffix(warn, "; the step has loopback only\n") || strings.Count(warn, "\n") != 1 {
		t.Errorf("stderr %q, want a one-line warning", warn)
	}
}

func BenchmarkRunTrueNetworkNone(b *testing.B) {
	executortest.RequireRoot(b)
	sb := newSandbox(b)
	root, _ := executortest.OverlayRoot(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		spec := executor.Spec{Args: []string{"/bin/true"}, Root: root, Network: executor.NetworkNone}
		if err := sb.Run(ctx, spec, executor.IO{}); err != nil {
			b.Fatal(err)
		}
	}
}
