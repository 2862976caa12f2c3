package builder_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

// strataBinary builds the strata command into a temp dir, with the race
// detector when race is set (a racing process then exits 66 and says so).
func strataBinary(t *testing.T, race bool) string {
	t.Helper()
	testutil.RequireRoot(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the strata binary")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/strata")...)
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build strata: %v\n%s", err, out)
	}
	return bin
}

// cliStore makes a store root holding the busybox image, closed again so
// that strata processes can use it.
func cliStore(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Import(context.Background(), bytes.NewReader(testutil.BusyboxRootfs(t)), store.ImportOptions{Name: "busybox"}); err != nil {
		t.Fatal(err)
	}
	return root
}

// strataCmd is one strata invocation on a store root.
func strataCmd(bin, root string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	return cmd
}

// openStore opens root in this process, closing it when the test ends.
func openStore(t *testing.T, root string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// checkStoreClean says what a store left behind once no process uses it:
// snapshots that are not committed, per-process temp dirs, mounts.
func checkStoreClean(t *testing.T, st *store.Store) {
	t.Helper()
	for name, kind := range snapshotNames(t, st) {
		if kind != snapshot.KindCommitted {
			t.Errorf("%s snapshot %s left after Open", kind, name)
		}
	}
	des, err := os.ReadDir(filepath.Join(st.Root(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	own := filepath.Base(st.Parts().TempDir)
	for _, de := range des {
		if n := de.Name(); n != own && n != own+".lock" {
			left = append(left, n)
		}
	}
	if len(left) > 0 {
		t.Errorf("temp dirs left in the store: %v", left)
	}
	for _, mp := range mountsUnder(t, st.Root()) {
		t.Errorf("mount left under the store root: %s", mp)
	}
}

// mountsUnder lists this mount namespace's mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) > 4 && (fs[4] == dir || strings.HasPrefix(fs[4], dir+"/")) {
			out = append(out, fs[4])
		}
	}
	return out
}

// overlapping is process i's Dockerfile: a common prefix, a step shared by
// the odd and by the even builds, and a step of its own.
func overlapping(i int) string {
	return fmt.Sprintf(`FROM busybox AS base
RUN echo common > /common
COPY shared.txt /shared.txt
RUN head -c 500000 /dev/urandom > /noise && cat /shared.txt > /s

FROM base
RUN echo parity-%d > /parity
RUN echo own-%d > /own && cat /common /parity >> /own
`, i%2, i)
}

func TestConcurrentProcessesShareOneStore(t *testing.T) {
	bin := strataBinary(t, true)
	root := cliStore(t)
	const n = 4
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = writeContext(t, map[string]string{"Dockerfile": overlapping(i), "shared.txt": "shared\n"})
	}
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := strataCmd(bin, root, "build", "--progress", "plain", "-t", fmt.Sprintf("conc:%d", i), dirs[i])
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("build %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	if t.Failed() {
		return
	}
	// Every build is whole, and a second round is all cached.
	for i := range n {
		out, err := strataCmd(bin, root, "build", "--progress", "plain", "-t", fmt.Sprintf("conc:%d", i), dirs[i]).CombinedOutput()
		if err != nil {
			t.Fatalf("rebuild %d: %v\n%s", i, err, out)
		}
		if strings.Contains(string(out), "cache miss") || !strings.Contains(string(out), "CACHED") {
			t.Errorf("rebuild %d was not all cached:\n%s", i, out)
		}
	}
	// A new build on the shared prefix runs only its own steps.
	fresh := writeContext(t, map[string]string{"Dockerfile": overlapping(1) + "RUN echo fresh > /fresh\n", "shared.txt": "shared\n"})
	out, err := strataCmd(bin, root, "build", "--progress", "plain", fresh).CombinedOutput()
	if err != nil {
		t.Fatalf("fresh build: %v\n%s", err, out)
	}
	if c := strings.Count(string(out), "cache miss"); c != 1 {
		t.Errorf("fresh build on the shared prefix missed %d steps, want 1:\n%s", c, out)
	}

	st := openStore(t, root)
	checkStoreClean(t, st)
	e := &env{t: t, store: st}
	for i := range n {
		img, err := st.Image(context.Background(), fmt.Sprintf("conc:%d", i))
		if err != nil {
			t.Fatal(err)
		}
		im := e.readImage(&builder.Result{Manifest: img.Target})
		want := fmt.Sprintf("own-%d\ncommon\nparity-%d\n", i, i%2)
		if got := string(im.file(t, "/own").data); got != want {
			t.Errorf("conc:%d /own = %q, want %q", i, got, want)
		}
		if got := string(im.file(t, "/s").data); got != "shared\n" {
			t.Errorf("conc:%d /s = %q", i, got)
		}
	}
}
