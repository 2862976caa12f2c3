package ops

import (
	"context"
	"errors"
	"fmt"
	"testing"

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
