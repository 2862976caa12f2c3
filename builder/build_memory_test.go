package builder_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/strata-build/strata/builder"
)

// maxAllocPerFile bounds what a cold COPY of many small files allocates
// per file, all of the build's allocations counted (the copy, the
// checksums, the layer, the progress): 7.7 KB a file when it was set,
// about twice that allowed. The copy and the checksum once allocated a
// 32 KiB buffer each per file (gigabytes for 100,000 files, and a heap many
// times what the build held); a regression of that kind fails here.
const maxAllocPerFile = 16 << 10

// Run without -race by `make test` (the race detector makes sync.Pool drop
// buffers on purpose, which this would count).
func TestCopyManyFilesAllocatesLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race sync.Pool drops buffers on purpose: make test runs this without it")
	}
	e := newEnv(t)
	const dirs, perDir = 20, 1000
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY src/ /src/\n"})
	for d := range dirs {
		sub := filepath.Join(dir, "src", fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range perDir {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.txt", f)), fmt.Appendf(nil, "%d/%d\n", d, f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, _ := e.mustBuild(dir, builder.Options{})
	runtime.ReadMemStats(&after)
	perFile := (after.TotalAlloc - before.TotalAlloc) / (dirs * perDir)
	t.Logf("a cold COPY of %d files allocated %d bytes a file", dirs*perDir, perFile)
	if perFile > maxAllocPerFile {
		t.Errorf("a cold COPY allocated %d bytes a file, more than %d", perFile, maxAllocPerFile)
	}
	if got := fileData(e.readImage(res), "/src/d7/f123.txt"); got != "7/123\n" {
		t.Errorf("/src/d7/f123.txt = %q", got)
	}
}
