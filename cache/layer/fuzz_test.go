package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary layers to Apply and checks that nothing appears
// or changes next to the root, whatever the entries say.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("Apply keeps owners, which needs root")
	}
	seed := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			tw.WriteHeader(h)
		}
		tw.Close()
		return buf.Bytes()
	}
	f.Add(seed(sym("l", "../.."), reg("l/x")))
	f.Add(seed(sym("l", "/"), dir("l/d/"), hard("l/d/h", "l")))
	f.Add(seed(dir("a/"), reg("a/.wh..wh..opq"), reg(".wh.a"), reg("../x")))
	f.Fuzz(func(t *testing.T, layer []byte) {
		outer := t.TempDir()
		root := filepath.Join(outer, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		sentinel := filepath.Join(outer, "sentinel")
		if err := os.WriteFile(sentinel, []byte("s"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Apply(context.Background(), bindOf(root), bytes.NewReader(layer))
		des, err := os.ReadDir(outer)
		if err != nil || len(des) != 2 {
			t.Fatalf("entries next to the root: %v (err %v)", des, err)
		}
		if b, err := os.ReadFile(sentinel); err != nil || string(b) != "s" {
			t.Fatalf("sentinel changed: %q, %v", b, err)
		}
	})
}
