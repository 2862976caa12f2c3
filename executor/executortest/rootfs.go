// Package executortest is the conformance suite every executor.Executor
// passes, and the busybox root filesystems it runs on.
//
// A backend's test calls Run with the executor and a function that returns
// a fresh, writable root filesystem as mounts (OverlayRoot makes one from a
// busybox tree). The suite needs root and /bin/busybox (Debian's
// busybox-static); it skips without them. The test binary's TestMain must
// call executor.MaybeInit first.
package executortest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/mount"
)

// Busybox is the static busybox the root filesystems are made from.
const Busybox = "/bin/busybox"

// Passwd and Group are the root filesystem's user database: root, and
// "app" (1000:1000) with the supplementary group "extra" (2000).
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	Group  = "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"
)

// RequireRoot skips t unless it runs as root with busybox installed.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root (namespaces, mounts)")
	}
	if _, err := os.Stat(Busybox); err != nil {
		t.Skipf("the test root filesystem needs %s (busybox-static)", Busybox)
	}
}

// MakeBusyboxRootfs fills dir with a minimal image: bin/busybox and a
// symlink per applet, /etc/passwd and /etc/group, and the usual empty
// directories.
func MakeBusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/app", "mnt"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	must(t, os.Chown(filepath.Join(dir, "home/app"), 1000, 1000))
	data, err := os.ReadFile(Busybox)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755))
	out, err := exec.Command(Busybox, "--list").Output()
	must(t, err)
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		must(t, os.Symlink("busybox", filepath.Join(dir, "bin", applet)))
	}
	must(t, os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(Passwd), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "etc/group"), []byte(Group), 0o644))
}

// OverlayRoot returns a writable overlay over a fresh busybox tree, and its
// upper directory, where the run's writes land.
func OverlayRoot(t testing.TB) (mounts []mount.Mount, upper string) {
	t.Helper()
	base := t.TempDir()
	lower, upper, work := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{lower, upper, work} {
		must(t, os.Mkdir(d, 0o755))
	}
	MakeBusyboxRootfs(t, lower)
	return []mount.Mount{{
		Type:    "overlay",
		Source:  "overlay",
		Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work},
	}}, upper
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
