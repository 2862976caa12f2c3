package builder_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/store"
)

// A Dockerfile of 1,000 RUN steps builds, one layer per step, past the
// 500 layers an overlay stacks; a prune that keeps the cache keeps the
// flattened lower copies, and a rebuild is all cached.
func TestBuildThousandSteps(t *testing.T) {
	e := newEnv(t)
	const steps = 1000
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&df, "RUN echo %d > /f%d\n", i, i)
	}
	df.WriteString("RUN cat /f1 /f500 /f1000 > /sum\n")
	dir := writeContext(t, map[string]string{"Dockerfile": df.String()})
	res, _ := e.mustBuild(dir, builder.Options{})
	img := e.readImage(res)
	if n := len(img.manifest.Layers); n != steps+2 {
		t.Errorf("%d layers, want %d (the base, one per step)", n, steps+2)
	}
	if got := fileData(img, "/sum"); got != "1\n500\n1000\n" {
		t.Errorf("/sum = %q", got)
	}
	ctx := context.Background()
	n, size, err := e.store.FlatUsage(ctx)
	if err != nil || n == 0 || size == 0 {
		t.Fatalf("flattened copies: %d, %d bytes, %v", n, size, err)
	}
	if _, err := e.store.Prune(ctx, store.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := e.store.FlatUsage(ctx); m != n {
		t.Errorf("a prune that kept the cache left %d of %d flattened copies", m, n)
	}
	again, ev := e.mustBuild(dir, builder.Options{})
	if again.Manifest.Digest != res.Manifest.Digest || statusOf(t, ev, "RUN cat /f1 /f500 /f1000 > /sum") != progress.Cached {
		t.Errorf("rebuild: %s vs %s, %v", again.Manifest.Digest, res.Manifest.Digest, statusOf(t, ev, "RUN cat /f1 /f500 /f1000 > /sum"))
	}
}
