package ops

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// exitExecutor is an executor whose processes all exit with code.
type exitExecutor struct{ code int }

func (e exitExecutor) Run(ctx context.Context, spec executor.Spec, sio executor.IO) error {
	return fmt.Errorf("run %s: %w", spec.Args[0], &executor.ExitError{Code: e.code})
}

// A RUN's exit error keeps the executor's inside: callers up to the
// builder find either type with errors.As.
func TestExitErrorWrapsTheExecutors(t *testing.T) {
	w := newTestWorker(t)
	w.Executor = exitExecutor{code: 7}
	v := &llb.Vertex{Op: &llb.ExecOp{
		Args:   []string{"/bin/sh", "-c", "exit 7"},
		Cwd:    "/",
		Mounts: []llb.Mount{{Type: llb.MountBind, Dest: "/", Input: -1}},
	}, Meta: llb.Meta{Name: "RUN exit 7"}}
	_, err := solve(t, w, v)
	if err == nil {
		t.Fatal("solve succeeded")
	}
	var ve *solver.VertexError
	if !errors.As(err, &ve) {
		t.Errorf("not a *solver.VertexError: %v", err)
	}
	var oe *ExitError
	if !errors.As(err, &oe) || oe.Code != 7 || len(oe.Args) != 3 {
		t.Fatalf("no *ops.ExitError with code 7 in %v", err)
	}
	var ee *executor.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("no *executor.ExitError with code 7 in %v", err)
	}
	if want := `process "/bin/sh -c exit 7" did not complete successfully: exit code: 7`; oe.Error() != want {
		t.Errorf("message %q, want %q", oe.Error(), want)
	}
}

// recordingExecutor fails the first command with code 3 and records every
// spec it runs.
type recordingExecutor struct {
	mu    sync.Mutex
	specs []executor.Spec
}

func (e *recordingExecutor) Run(ctx context.Context, spec executor.Spec, sio executor.IO) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.specs = append(e.specs, spec)
	if len(e.specs) == 1 {
		return &executor.ExitError{Code: 3}
	}
	return nil
}

// activeSnapshots lists the worker's active snapshots.
func activeSnapshots(t *testing.T, w *Worker) []string {
	t.Helper()
	var out []string
	err := w.Snapshotter.Walk(context.Background(), func(i snapshot.Info) error {
		if i.Kind == snapshot.KindActive {
			out = append(out, i.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// OnRunError sees a failed RUN with its root still there, and its shell
// runs with the command's spec; afterwards the step fails as before and
// its root is gone.
func TestOnRunErrorShellRunsInTheFailedStepsSandbox(t *testing.T) {
	w := newTestWorker(t)
	rec := &recordingExecutor{}
	w.Executor = rec
	w.Secrets = map[string][]byte{"tok": []byte("s3cret")}
	var calls int
	w.OnRunError = func(ctx context.Context, f *FailedRun) {
		calls++
		if n := len(activeSnapshots(t, w)); n != 1 {
			t.Errorf("%d active snapshots during OnRunError, want the step's root", n)
		}
		if f.Name != "RUN fail" || f.Err.Code != 3 {
			t.Errorf("failed run %q, code %d", f.Name, f.Err.Code)
		}
		if want := []string{"HTTP_PROXY", "TOKEN"}; !slices.Equal(f.Hidden, want) {
			t.Errorf("hidden env %v, want %v", f.Hidden, want)
		}
		if len(f.Mounts) != 1 || f.Mounts[0].Dest != "/tmp" {
			t.Errorf("mounts %+v, want the tmpfs on /tmp", f.Mounts)
		}
		if err := f.Shell(ctx, "/bin/bash", executor.IO{}); err != nil {
			t.Errorf("shell: %v", err)
		}
	}
	v := &llb.Vertex{Op: &llb.ExecOp{
		Args:      []string{"/bin/sh", "-c", "false"},
		Env:       []string{"FOO=bar"},
		Cwd:       "/src",
		User:      "app",
		Network:   llb.NetNone,
		SecretEnv: map[string]string{"TOKEN": "tok"},
		ProxyEnv:  []string{"HTTP_PROXY=http://u:p@proxy"},
		Mounts:    []llb.Mount{{Type: llb.MountBind, Dest: "/", Input: -1}, {Type: llb.MountTmpfs, Dest: "/tmp", Input: -1}},
	}, Meta: llb.Meta{Name: "RUN fail"}}
	_, err := solve(t, w, v)
	var oe *ExitError
	if !errors.As(err, &oe) || oe.Code != 3 {
		t.Fatalf("solve: %v, want the command's exit code 3", err)
	}
	if calls != 1 || len(rec.specs) != 2 {
		t.Fatalf("%d OnRunError calls, %d runs; want 1 and 2", calls, len(rec.specs))
	}
	cmd, sh := rec.specs[0], rec.specs[1]
	if !sh.Tty || !slices.Equal(sh.Args, []string{"/bin/bash"}) || cmd.Tty {
		t.Errorf("shell args %v tty %v, command tty %v", sh.Args, sh.Tty, cmd.Tty)
	}
	sh.Args, sh.Tty = cmd.Args, cmd.Tty
	if !reflect.DeepEqual(sh, cmd) {
		t.Errorf("the shell's spec differs from the command's:\n%+v\n%+v", sh, cmd)
	}
	if !slices.Contains(cmd.Env, "TOKEN=s3cret") || cmd.Cwd != "/src" || cmd.User != "app" || cmd.Network != executor.NetworkNone || len(cmd.Mounts) != 1 {
		t.Errorf("command spec %+v", cmd)
	}
	if left := activeSnapshots(t, w); len(left) != 0 {
		t.Errorf("active snapshots left: %v", left)
	}
}
