package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		m    Mount
		p    string
		want string
	}{
		{Mount{}, "x/fs", "x/fs"},
		{Mount{Dir: "/s"}, "x/fs", "/s/x/fs"},
		{Mount{Dir: "/s"}, "/abs/fs", "/abs/fs"},
	} {
		if got := tc.m.Path(tc.p); got != tc.want {
			t.Errorf("%+v.Path(%q) = %q, want %q", tc.m, tc.p, got, tc.want)
		}
	}
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
}

// A read-only bind is read-only once mounted, and WithTemp leaves nothing
// mounted or behind.
func TestWithTempReadOnlyBind(t *testing.T) {
	needRoot(t)
	src, tmp := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	var root string
	err := WithTemp(tmp, []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, func(r string) error {
		root = r
		if b, err := os.ReadFile(filepath.Join(r, "f")); err != nil || string(b) != "data" {
			t.Errorf("read through the bind: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(r, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write to a read-only bind: %v, want EROFS", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("temporary mount point %s left behind: %v", root, err)
	}
}

// With Dir set, relative paths are taken from Dir.
func TestRelativeToDir(t *testing.T) {
	needRoot(t)
	base, target := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "src", "f"), []byte("rel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := All([]Mount{{Type: "bind", Source: "src", Dir: base}}, target); err != nil {
		t.Fatal(err)
	}
	defer Unmount(target)
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "rel" {
		t.Errorf("read through the bind: %q, %v", b, err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Errorf("Unmount of a path that is no mount point: %v", err)
	}
}

// An overlay of more lower directories than one page of mount data holds
// mounts through the new mount API, the upper one winning; more than the
// kernel stacks is refused with the limit named.
func TestOverlayOfManyLowers(t *testing.T) {
	needRoot(t)
	if _, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC); err != nil {
		t.Skipf("no fsopen: %v", err)
	}
	base := t.TempDir()
	lowers := func(n int) string {
		var dirs []string
		for i := range n {
			d := filepath.Join(base, fmt.Sprintf("snapshots/%d/fs-with-a-long-name", i))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "f"), []byte(fmt.Sprint(i)), 0o644); err != nil {
				t.Fatal(err)
			}
			dirs = append([]string{d}, dirs...) // the top first, as overlay takes them
		}
		return strings.Join(dirs, ":")
	}
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=" + lowers(300), "upperdir=" + upper, "workdir=" + work}}
	if len(strings.Join(m.Options, ",")) < maxMountData {
		t.Fatal("the options fit a page: the test tests nothing")
	}
	err := WithTemp(t.TempDir(), []Mount{m}, func(root string) error {
		b, err := os.ReadFile(filepath.Join(root, "f"))
		if err != nil || string(b) != "299" {
			return fmt.Errorf("f = %q, %v; want the top layer's", b, err)
		}
		return os.WriteFile(filepath.Join(root, "new"), nil, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Errorf("the write did not reach the upper dir: %v", err)
	}
	m.Options[1] = "lowerdir=" + lowers(501)
	err = WithTemp(t.TempDir(), []Mount{m}, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "501 layers") || !strings.Contains(err.Error(), "500") {
		t.Errorf("501 lowers: %v", err)
	}
}
