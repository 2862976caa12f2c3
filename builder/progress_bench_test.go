package builder_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

// BenchmarkProgressOutput runs a RUN that prints 1,000 lines, uncached,
// under each progress view: the tty view must cost no more than a few
// percent over quiet (`go test -run '^$' -bench ProgressOutput ./builder/`
// and compare the ns/op of the sub-benchmarks).
func BenchmarkProgressOutput(b *testing.B) {
	testutil.RequireRoot(b)
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Import(ctx, bytes.NewReader(testutil.BusyboxRootfs(b)), store.ImportOptions{Name: "busybox"}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	df := "FROM busybox\nRUN i=0; while [ $i -lt 1000 ]; do echo \"line $i of what a compiler says about some/package/file.go\"; i=$((i+1)); done\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		b.Fatal(err)
	}
	size := func() (int, int) { return 120, 40 }
	for _, mode := range []progress.Mode{progress.ModeQuiet, progress.ModePlain, progress.ModeTTY} {
		b.Run(string(mode), func(b *testing.B) {
			for b.Loop() {
				r := progress.New(mode, io.Discard, progress.Options{Size: size})
				if _, err := builder.Build(ctx, st, builder.Options{ContextDir: dir, NoCache: true, Progress: r}); err != nil {
					b.Fatal(err)
				}
				if err := r.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
