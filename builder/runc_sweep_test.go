package builder_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A strata process killed while a --runtime=runc step runs leaves the
// container running; the next Open of the store stops it.
func TestOpenStopsContainersOfAKilledRuncBuild(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	bin := strataBinary(t, false)
	root := cliStore(t)
	// A number of its own, so no other sleep on the machine is mistaken
	// for this container's.
	marker := strconv.Itoa(100000 + os.Getpid()%100000)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=bind,source=sync,target=/sync echo started > /sync/fifo && sleep " + marker + "\n",
	})
	fifo := filepath.Join(dir, "sync", "fifo")
	if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := strataCmd(bin, root, "build", "--runtime", "runc", "--progress", "plain", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil || line != "started\n" {
		t.Fatalf("read from the RUN step: %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(sleepers(marker)) == 0 {
		t.Fatal("the container died with strata: nothing to sweep (the test proves nothing)")
	}
	openStore(t, root)
	deadline := time.Now().Add(15 * time.Second)
	for len(sleepers(marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("container processes still running after Open: %v", sleepers(marker))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sleepers lists the pids running "sleep <marker>".
func sleepers(marker string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ") == "sleep "+marker {
			out = append(out, e.Name())
		}
	}
	return out
}
