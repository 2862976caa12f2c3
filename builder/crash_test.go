package builder_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

// crashDockerfile does a bit of everything a build does: unpack, COPY, RUN
// with a bind mount, a layer worth compressing, a second stage.
const crashDockerfile = `FROM busybox AS build
ARG N
COPY f.txt /f.txt
RUN head -c 3000000 /dev/urandom > /big && echo $N > /n
RUN --mount=type=bind,source=.,target=/ctx cat /ctx/f.txt /n > /out

FROM busybox
COPY --from=build /out /big /
RUN cat /out > /final
`

// crashSeed is the seed of the kill delays: STRATA_CRASH_SEED repeats a run.
func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("STRATA_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_CRASH_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

func TestKillNineAtRandomPointsLeavesUsableStore(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	seed := crashSeed(t)
	t.Logf("kill delays seeded with %d (STRATA_CRASH_SEED repeats them)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	tmp := t.TempDir() // the children's TMPDIR
	dir := writeContext(t, map[string]string{"Dockerfile": crashDockerfile, "f.txt": "context\n"})

	// One whole build says how long the window for a kill is.
	start := time.Now()
	if out, err := strataCmd(bin, root, "build", "--build-arg", "N=whole", dir).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	window := time.Since(start)
	t.Logf("a whole build takes %v", window)

	const iterations = 15
	for i := range iterations {
		// Each build misses from its first RUN on, so every kill lands in
		// real work: start-up sweep, snapshots, sandbox, layer export,
		// tagging.
		delay := time.Duration(rng.Int64N(int64(window)))
		cmd := strataCmd(bin, root, "build", "--build-arg", fmt.Sprintf("N=%d", i), "-t", "crash:latest", "-o", "type=oci,dest="+filepath.Join(tmp, "out.tar"), dir)
		cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(delay, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		t.Logf("iteration %d: killed after %v: %v", i, delay, err)

		// The next command works with no repair step, and after it opened
		// the store nothing of the killed process is left.
		if out, err := strataCmd(bin, root, "du").CombinedOutput(); err != nil {
			t.Fatalf("iteration %d: strata du after kill -9: %v\n%s", i, err, out)
		}
		for _, mp := range mountsUnder(t, tmp) {
			t.Errorf("iteration %d: mount left in TMPDIR: %s", i, mp)
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
		checkRootClean(t, root)
		if t.Failed() {
			return
		}
	}
	// A build after all the crashes succeeds and a rebuild hits the cache.
	out, err := strataCmd(bin, root, "build", "--progress", "plain", "--build-arg", "N=final", "-t", "crash:latest", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("build after the crashes: %v\n%s", err, out)
	}
	out, err = strataCmd(bin, root, "build", "--progress", "plain", "--build-arg", "N=final", "-t", "crash:latest", dir).CombinedOutput()
	if err != nil || strings.Contains(string(out), "cache miss") {
		t.Fatalf("rebuild after the crashes (%v) was not cached:\n%s", err, out)
	}
	if out, err := strataCmd(bin, root, "du").CombinedOutput(); err != nil || !strings.Contains(string(out), "Total:") {
		t.Fatalf("strata du: %v\n%s", err, out)
	}
	if out, err := strataCmd(bin, root, "prune", "--all").CombinedOutput(); err != nil {
		t.Fatalf("strata prune --all after the crashes: %v\n%s", err, out)
	}
	st := openStore(t, root)
	checkStoreClean(t, st)
	if n := len(snapshotNames(t, st)); n != 0 {
		t.Errorf("%d snapshots left after prune --all", n)
	}
}

// checkRootClean opens root, checks it as checkStoreClean does, closes it.
func checkRootClean(t *testing.T, root string) {
	t.Helper()
	st, err := store.Open(t.Context(), root)
	if err != nil {
		t.Fatalf("open store after a crash: %v", err)
	}
	defer st.Close()
	checkStoreClean(t, st)
}

func TestInterruptStopsRunPromptly(t *testing.T) {
	bin := strataBinary(t, false)
	root := cliStore(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=bind,source=sync,target=/sync echo started > /sync/fifo && sleep 60\n",
	})
	fifo := filepath.Join(dir, "sync", "fifo")
	if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := strataCmd(bin, root, "build", "--progress", "plain", dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// Opening the fifo for reading returns once the RUN step opens it.
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil || line != "started\n" {
		t.Fatalf("read from the RUN step: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var werr error
	select {
	case werr = <-waited:
	case <-time.After(20 * time.Second): // the RUN step sleeps for 60 s
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("strata still running 20 s after SIGINT:\n%s", out.String())
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit after SIGINT: %v, want exit code 1\n%s", werr, out.String())
	}
	if !strings.Contains(out.String(), "ERROR") {
		t.Errorf("no error printed after SIGINT:\n%s", out.String())
	}
	st := openStore(t, root)
	checkStoreClean(t, st)
	// The interrupted step left no record: the store builds it again.
	if o, err := strataCmd(bin, root, "du").CombinedOutput(); err != nil {
		t.Fatalf("strata du: %v\n%s", err, o)
	}
	for _, u := range mustDU(t, st) {
		if u.Snapshot == "" {
			continue
		}
		if _, err := st.Parts().Snapshotter.Stat(t.Context(), u.Snapshot); err != nil {
			t.Errorf("record %s points at a missing snapshot: %v", u.Key, err)
		}
	}
}

func TestOpenSweepsStaleChecksumTemps(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	dir := filepath.Join(root, "checksums")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, ".tmp-cache-1"), filepath.Join(dir, ".tmp-cache-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	checkRootClean(t, root)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a temp file a killed process left in checksums/ survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("Open removed a temp file a live process may be writing: %v", err)
	}
}
