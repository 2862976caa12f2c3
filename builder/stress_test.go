package builder_test

import (
	"fmt"
	"sync"
	"testing"
)

// Builds, tags, image listings and prunes from several processes at once on
// one store all succeed: the base image is always found, and whatever a
// prune removes the next build makes again.
func TestMixedCommandsOnOneStore(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dirs := make([]string, 2)
	for i := range dirs {
		dirs[i] = writeContext(t, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nRUN echo %d > /n\n", i)})
	}
	const rounds = 8
	var (
		mu   sync.Mutex
		errs []string
	)
	run := func(args ...string) {
		out, err := strataCmd(bin, root, args...).CombinedOutput()
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("strata %v: %v\n%s", args, err, out))
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() {
			for r := range rounds {
				run("build", "--progress", "quiet", "-t", fmt.Sprintf("mixed%d:%d", i, r), dirs[i])
			}
		})
	}
	wg.Go(func() {
		for r := range rounds {
			run("tag", "busybox", fmt.Sprintf("alias:%d", r))
			run("images")
		}
	})
	wg.Go(func() {
		for range rounds / 2 {
			run("prune", "--all")
		}
	})
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	checkStoreClean(t, openStore(t, root))
}
