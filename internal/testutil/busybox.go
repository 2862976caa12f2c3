// Package testutil makes what strata's tests need from real parts: a busybox
// root filesystem from Debian's busybox-static, as a tarball to import.
package testutil

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts, namespaces and overlayfs")
	}
}

// RequireBusybox skips the test unless a static busybox is installed.
func RequireBusybox(t testing.TB) {
	t.Helper()
	out, err := exec.Command("file", "-L", BusyboxPath).Output()
	if err != nil && !bytes.Contains(out, []byte("statically")) {
		if _, serr := os.Stat(BusyboxPath); serr != nil {
			t.Skipf("needs %s (Debian package busybox-static)", BusyboxPath)
		}
	}
}

// Passwd and Group are the busybox image's user databases: root, an "app"
// user 1000:1000 with a supplementary group "extra" (1001), and nobody.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	Group  = "root:x:0:\napp:x:1000:\nextra:x:1001:app\nnogroup:x:65534:\n"
)

// BusyboxRootfs returns a deterministic tar of a busybox root filesystem:
// /bin/busybox with a symlink per applet, /etc/passwd, /etc/group and the
// usual empty directories.
func BusyboxRootfs(t testing.TB) []byte {
	t.Helper()
	RequireBusybox(t)
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	applets := strings.Fields(string(list))
	sort.Strings(applets)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dir := func(name string, mode int64) {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime, Format: tar.FormatPAX}))
	}
	file := func(name string, mode int64, data []byte) {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}))
		_, err := tw.Write(data)
		must(t, err)
	}
	dir("bin", 0o755)
	file("bin/busybox", 0o755, bin)
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}))
	}
	for _, d := range []string{"dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "var"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	dir("home/app", 0o755)
	file("etc/passwd", 0o644, []byte(Passwd))
	file("etc/group", 0o644, []byte(Group))
	must(t, tw.Close())
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
