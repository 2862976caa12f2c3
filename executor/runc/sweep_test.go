//go:build linux

package runc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/executortest"
	"github.com/strata-build/strata/executor/runc"
	"github.com/strata-build/strata/mount"
)

// helperEnv makes the test binary a strata process that runs one
// container and waits to be killed; its value is the state dir, and
// helperRoot's the root's mounts as JSON.
const helperEnv, helperRoot = "STRATA_RUNC_SWEEP_STATE", "STRATA_RUNC_SWEEP_ROOT"

func TestMain(m *testing.M) {
	if state := os.Getenv(helperEnv); state != "" {
		os.Exit(helper(state))
	}
	os.Exit(m.Run())
}

func helper(state string) int {
	var root []mount.Mount
	if err := json.Unmarshal([]byte(os.Getenv(helperRoot)), &root); err != nil {
		return 2
	}
	rt, err := runc.New(runc.Options{StateDir: state})
	if err != nil {
		return 2
	}
	spec := executor.Spec{Root: root, Network: executor.NetworkNone,
		Args: []string{"/bin/sh", "-c", "echo started $$; exec sleep 1000"}}
	_ = rt.Run(context.Background(), spec, executor.IO{Stdout: os.Stdout, Stderr: os.Stderr})
	return 1
}

func TestRuncSweepsKilledProcess(t *testing.T) {
	requireRunc(t)
	state := t.TempDir()
	root := overlayRoot(t)
	data, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+state, helperRoot+"="+string(data))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	// Killing the strata process kills its `runc run` (parent-death
	// signal); the container stays.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	roots, _ := filepath.Glob(filepath.Join(state, "runc", "*", "root"))
	if len(roots) != 1 {
		t.Fatalf("runc roots %q, want the killed process's", roots)
	}
	pid := containerPid(t, roots[0])
	if !running(pid) {
		t.Fatalf("container process %d is not running before the sweep", pid)
	}

	if _, err := runc.New(runc.Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if running(pid) {
		t.Errorf("container process %d survived the sweep", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if _, err := os.Stat(filepath.Dir(roots[0])); !os.IsNotExist(err) {
		t.Errorf("the killed process's directory survived the sweep: %v", err)
	}
	if leaked := executortest.MountsUnder(t, state); len(leaked) > 0 {
		t.Errorf("mounts left after the sweep: %q", leaked)
	}
	// The new Runtime's own directory is all that is left, and locked.
	if ents, _ := filepath.Glob(filepath.Join(state, "runc", "*")); len(ents) != 2 {
		t.Errorf("runc state after the sweep: %q, want the new runtime's directory and lock", ents)
	}
}

// containerPid returns the host pid of the one container in root.
func containerPid(t *testing.T, root string) int {
	t.Helper()
	out, err := exec.Command("runc", "--root", root, "list", "-f", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 1 || list[0].Pid == 0 {
		t.Fatalf("containers in %s: %s %v", root, out, err)
	}
	return list[0].Pid
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return rest != "" && rest[0] != 'Z' && rest[0] != 'X'
}
