package executor_test

import (
	"context"
	"os"
	"testing"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/executortest"
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
	executortest.Run(t, newSandbox(t), func(t testing.TB) []snapshot.Mount {
		ms, _ := executortest.OverlayRoot(t)
		return ms
	})
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
