package xattr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("v", 3000) // larger than the first read buffer
	if err := unix.Lsetxattr(p, "user.big", []byte(big), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	if err := unix.Lsetxattr(p, "user.small", []byte("s"), 0); err != nil {
		t.Fatal(err)
	}
	all, err := All(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["user.big"] != big || all["user.small"] != "s" {
		t.Errorf("All = %d attributes, big %d bytes, small %q", len(all), len(all["user.big"]), all["user.small"])
	}
	if _, err := Get(p, "user.missing"); err == nil {
		t.Error("a missing attribute read without error")
	}
	q := filepath.Join(t.TempDir(), "none")
	if err := os.WriteFile(q, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if names, err := List(q); err != nil || len(names) != 0 {
		t.Errorf("List of a file without attributes = %v, %v", names, err)
	}
}
