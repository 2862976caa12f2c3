package executortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/mount"
)

// gatewayScript prints the sandbox's default gateway.
const gatewayScript = `ip route | awk '$1 == "default" { print $3 }'`

// hostServer serves "hello from the host" on every address of the host.
func hostServer(t *testing.T) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the host\n")
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// hostHasAddr reports whether an interface of the host holds a.
func hostHasAddr(t *testing.T, a string) bool {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	must(t, err)
	for _, x := range addrs {
		if ipn, ok := x.(*net.IPNet); ok && ipn.IP.String() == a {
			return true
		}
	}
	return false
}

func (s *suite) testNetworkReach(t *testing.T) {
	port := hostServer(t)
	script := fmt.Sprintf(`gw=$(%s); echo "$gw"; wget -q -O - "http://$gw:%d/"`, gatewayScript, port)
	out := s.sh(t, executor.Spec{Network: executor.NetworkDefault}, script)
	gw, body, _ := strings.Cut(out, "\n")
	if _, err := netip.ParseAddr(gw); err != nil || body != "hello from the host\n" {
		t.Fatalf("default network: got %q, want the gateway and the host's answer", out)
	}
	if hostHasAddr(t, gw) {
		t.Errorf("the host end %s outlived the run", gw)
	}
	// Without a link, neither the former gateway nor the host's own
	// addresses are reachable.
	targets := []string{gw}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				targets = append(targets, ipn.IP.String())
			}
		}
	}
	for _, target := range targets {
		spec := executor.Spec{Network: executor.NetworkNone,
			Args: []string{"wget", "-q", "-T", "5", "-O", "-", fmt.Sprintf("http://%s:%d/", target, port)}}
		if out, _, err := s.run(t, spec, ""); err == nil {
			t.Errorf("network none reached %s: %q", target, out)
		}
	}
}

func (s *suite) testNetworkConcurrent(t *testing.T) {
	// Both runs hold their link until both have printed their addresses.
	shared := t.TempDir()
	script := `ip -4 -o addr show eth0 | awk '{ print $4 }' > /shared/$(hostname); while [ $(ls /shared | wc -l) -lt 2 ]; do sleep 0.01; done; cat /shared/$(hostname)`
	outs := make([]string, 2)
	var g errgroup.Group
	for i := range outs {
		root := s.newRoot(t)
		g.Go(func() error {
			var out strings.Builder
			spec := executor.Spec{Root: root, Hostname: fmt.Sprintf("run%d", i), Args: []string{"/bin/sh", "-c", script},
				Mounts: []executor.Mount{{Dest: "/shared", Mounts: []mount.Mount{{Type: "bind", Source: shared}}}}}
			err := s.e.Run(context.Background(), spec, executor.IO{Stdout: &out})
			outs[i] = strings.TrimSpace(out.String())
			return err
		})
	}
	must(t, g.Wait())
	a, errA := netip.ParsePrefix(outs[0])
	b, errB := netip.ParsePrefix(outs[1])
	if errA != nil || errB != nil || a.Masked().Overlaps(b.Masked()) {
		t.Errorf("concurrent runs got %q and %q, want two disjoint subnets", outs[0], outs[1])
	}
}

// cancelWhenStarted runs spec until its first output, cancels ctx with
// cancel, and returns the run's error and output.
func (s *suite) cancelWhenStarted(t *testing.T, ctx context.Context, cancel func(), spec executor.Spec) (error, string) {
	t.Helper()
	started := &firstWrite{ch: make(chan struct{})}
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- s.e.Run(ctx, spec, executor.IO{Stdout: io.MultiWriter(&out, started), Stderr: io.Discard})
	}()
	select {
	case <-started.ch:
	case err := <-done:
		t.Fatalf("run ended before cancel: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		return err, out.String()
	case <-time.After(guard):
		t.Fatal("cancelled run did not end")
	}
	return nil, ""
}

func (s *suite) testCancelNetwork(t *testing.T) {
	var before []os.DirEntry
	if s.opts.StateDir != "" {
		before, _ = os.ReadDir(s.opts.StateDir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := executor.Spec{Root: s.newRoot(t), Network: executor.NetworkDefault,
		Args: []string{"/bin/sh", "-c", gatewayScript + "; sleep 1000"}}
	err, out := s.cancelWhenStarted(t, ctx, cancel, spec)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if gw := strings.TrimSpace(out); gw == "" || hostHasAddr(t, gw) {
		t.Errorf("gateway %q: the host end outlived the cancelled run", gw)
	}
	if s.opts.StateDir != "" {
		if leaked := MountsUnder(t, s.opts.StateDir); len(leaked) > 0 {
			t.Errorf("mounts left under the state dir: %q", leaked)
		}
		after, _ := os.ReadDir(s.opts.StateDir)
		for _, e := range after {
			if !slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
				t.Errorf("state left after a cancelled run: %s", filepath.Join(s.opts.StateDir, e.Name()))
			}
		}
	}
}

func (s *suite) testStopSignal(t *testing.T) {
	script := `trap 'echo got TERM; exit 3' TERM; trap 'echo got INT; exit 4' INT; sleep 1000 & echo started; wait`
	ctx, cancel := context.WithCancel(context.Background())
	err, out := s.cancelWhenStarted(t, ctx, cancel, executor.Spec{Root: s.newRoot(t), Args: []string{"/bin/sh", "-c", script}})
	if !errors.Is(err, context.Canceled) || out != "started\ngot TERM\n" {
		t.Errorf("cancelled: got %v, output %q, want the step to see SIGTERM", err, out)
	}
	// A build stopped by Ctrl-C passes SIGINT on.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	interrupt := func() { must(t, syscall.Kill(os.Getpid(), syscall.SIGINT)); <-ctx.Done() }
	err, out = s.cancelWhenStarted(t, ctx, interrupt, executor.Spec{Root: s.newRoot(t), Args: []string{"/bin/sh", "-c", script}})
	if !errors.Is(err, context.Canceled) || out != "started\ngot INT\n" {
		t.Errorf("interrupted: got %v, output %q, want the step to see SIGINT", err, out)
	}
}
