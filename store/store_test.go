package store_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/internal/testutil"
	"github.com/strata-build/strata/store"
)

func open(t *testing.T, root string) *store.Store {
	t.Helper()
	testutil.RequireRoot(t)
	st, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

var here = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}

// The image operations of `strata images|tag|rmi|inspect|history|save|load`
// on one imported image, and their not-found errors.
func TestImageOperations(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	img, err := st.Import(ctx, bytes.NewReader(testutil.BusyboxRootfs(t)), store.ImportOptions{Name: "base", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "docker.io/library/base:latest" {
		t.Errorf("imported as %q", img.Name)
	}
	if err := st.Tag(ctx, "base", "127.0.0.1:5000/other:2"); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, "base", "Not A Name"); err == nil {
		t.Error("tag with an invalid name succeeded")
	}
	if err := st.Tag(ctx, "missing", "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tag of a missing image: %v, want not found", err)
	}
	list, err := st.Images(ctx, here)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Target.Digest != img.Target.Digest || list[1].Target.Digest != img.Target.Digest {
		t.Fatalf("images: %+v", list)
	}
	res, err := st.Resolve(ctx, "127.0.0.1:5000/other:2", here)
	if err != nil {
		t.Fatal(err)
	}
	want := res.Manifest.Config.Size + res.Manifest.Layers[0].Size
	if list[0].Size != want {
		t.Errorf("image size %d, want config + layer = %d", list[0].Size, want)
	}
	hist, err := st.History(ctx, "base", here)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Size != res.Manifest.Layers[0].Size || hist[0].CreatedBy != "strata import" || !hist[0].Created.Equal(created) {
		t.Errorf("history: %+v", hist)
	}

	// save -> load into another store gives the same image.
	archive := filepath.Join(t.TempDir(), "out.tar")
	if err := st.SaveFile(ctx, []string{"base", "127.0.0.1:5000/other:2"}, archive); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveFile(ctx, []string{"base", "missing"}, filepath.Join(filepath.Dir(archive), "bad.tar")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("save of a missing image: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(archive)); len(ents) != 1 {
		t.Errorf("a failed save left files behind: %v", ents)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	other := open(t, t.TempDir())
	loaded, err := other.Load(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 {
		t.Fatalf("loaded %+v", loaded)
	}
	got, err := other.Image(ctx, "127.0.0.1:5000/other:2")
	if err != nil || got.Target.Digest != img.Target.Digest {
		t.Errorf("loaded image: %+v, %v; want digest %s", got, err, img.Target.Digest)
	}

	if err := st.Untag(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Image(ctx, "base"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image after untag: %v, want not found", err)
	}
	if err := st.Untag(ctx, "base"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second untag: %v, want not found", err)
	}
	if _, err := st.Resolve(ctx, "127.0.0.1:5000/other:2", here); err != nil {
		t.Errorf("the other name lost its image: %v", err)
	}
}

// Close removes the process's temp dir and lock, and a second Close is
// harmless.
func TestCloseReleasesTheProcessDir(t *testing.T) {
	testutil.RequireRoot(t)
	root := t.TempDir()
	st, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	tmp := st.Parts().TempDir
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tmp, tmp + ".lock"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Close: %v", p, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Names reads the names of a store another process has open, and finds
// none, creating nothing, where there is no store.
func TestNames(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "none")
	if names, err := store.Names(ctx, missing); err != nil || names != nil {
		t.Errorf("names of a missing root: %q, %v", names, err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Names created the root: %v", err)
	}
	root := t.TempDir()
	st := open(t, root)
	labels := map[string]string{"team": "build"}
	for _, n := range []string{"b", "a:1"} {
		if _, err := st.Import(ctx, bytes.NewReader(testutil.BusyboxRootfs(t)), store.ImportOptions{Name: n, Changes: ocispec.ImageConfig{Labels: labels}}); err != nil {
			t.Fatal(err)
		}
	}
	names, err := store.Names(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/library/a:1", "docker.io/library/b:latest"}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	list, err := st.Images(ctx, here)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		if !maps.Equal(img.Labels, labels) {
			t.Errorf("%s: labels %v, want %v", img.Name, img.Labels, labels)
		}
	}
}
