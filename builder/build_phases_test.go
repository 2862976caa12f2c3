package builder_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/exporter"
)

// A build tells a sink that takes phases of each of its phases, in order,
// with the bytes an export wrote and the error of the one that failed.
func TestBuildReportsPhases(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
	tmp := t.TempDir()
	archive, cacheDir, from := filepath.Join(tmp, "app.tar"), filepath.Join(tmp, "cache"), filepath.Join(tmp, "none")
	res, ev := e.mustBuild(dir, builder.Options{
		Exports:   []exporter.Exporter{exporter.OCIArchive{Path: archive}},
		CacheFrom: []builder.CacheSpec{{Type: "local", Dir: from}},
		CacheTo:   []builder.CacheSpec{{Type: "local", Dir: cacheDir}},
		Warnings:  &strings.Builder{},
	})
	var names []string
	for i, p := range ev.phases {
		names = append(names, p.Name)
		if p.End.Before(p.Start) || (i > 0 && p.Start.Before(ev.phases[i-1].End)) {
			t.Errorf("phase %q from %v to %v, after %v", p.Name, p.Start, p.End, ev.phases[max(i-1, 0)].End)
		}
	}
	// Caches are imported first: the conversion resolves base images, and
	// a layer both name is fetched from the cache.
	want := []string{"import cache from local " + from, "convert Dockerfile", "solve", "write image", "export to oci archive " + archive, "export cache to local " + cacheDir}
	if !slices.Equal(names, want) {
		t.Fatalf("phases %q, want %q", names, want)
	}
	if p := ev.phases[0]; p.Err == "" {
		t.Errorf("the import of a missing cache reports no error: %+v", p)
	}
	if p := ev.phases[4]; p.Bytes != res.Reports[0].Size || p.Bytes == 0 || p.Err != "" {
		t.Errorf("export phase %+v, want the %d bytes written", p, res.Reports[0].Size)
	}

	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	_, ev, err := e.build(bad, builder.Options{})
	if err == nil {
		t.Fatal("a failing RUN built")
	}
	if n := len(ev.phases); n != 2 || ev.phases[1].Name != "solve" || !strings.Contains(ev.phases[1].Err, "exit code: 3") {
		t.Errorf("phases of a failed build %+v, want convert and a failed solve", ev.phases)
	}
}
