package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// bindMount prepares RUN --mount=type=bind: a subpath (source=) of a stage,
// an image or the build context. It is read-only unless rw is given, and
// then what the step writes is discarded with the step.
//
// A whole snapshot is passed to the sandbox as its mounts. A subpath of one
// cannot be expressed as mount data, so the snapshot is mounted on a temp
// dir under the process's temp dir (swept after a crash) and the subpath is
// bound from there; the release unmounts it.
func (o *execOp) bindMount(ctx context.Context, m llb.Mount, inputs []solver.Result) (executor.Mount, func(), error) {
	ref := &Ref{}
	if m.Input >= 0 {
		var err error
		if ref, err = ready(ctx, inputs[m.Input]); err != nil {
			return executor.Mount{}, nil, err
		}
	}
	if ref.Dir != "" {
		return o.bindDir(m, ref.Dir)
	}
	key := randomID("bind-")
	var mounts []mount.Mount
	var err error
	if m.Readonly {
		mounts, err = o.w.Snapshotter.View(ctx, key, ref.Snapshot)
	} else {
		mounts, err = o.w.Snapshotter.Prepare(ctx, key, ref.Snapshot)
	}
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	removeSnap := func() { _ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), key) }
	if m.Selector == "" || m.Selector == "/" {
		return executor.Mount{Dest: m.Dest, Mounts: mounts}, removeSnap, nil
	}
	dir, err := os.MkdirTemp(o.w.TempDir, "bind-")
	if err != nil {
		removeSnap()
		return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	release := func() {
		_ = mount.Unmount(dir)
		_ = os.Remove(dir)
		removeSnap()
	}
	if err := mount.All(mounts, dir); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	src, err := subpath(dir, m.Selector)
	if err != nil {
		release()
		return executor.Mount{}, nil, err
	}
	return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: src, Options: bindOptions(m.Readonly)}}}, release, nil
}

// bindDir binds a subpath of a host directory (the build context), which
// is never written: a rw mount of a directory gets an overlay whose upper
// dir is thrown away, a rw mount of a file a throwaway copy.
func (o *execOp) bindDir(m llb.Mount, dir string) (executor.Mount, func(), error) {
	src, err := confinedPath(dir, m.Selector)
	if err != nil {
		return executor.Mount{}, nil, err
	}
	ro := executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: src, Options: bindOptions(true)}}}
	if m.Readonly {
		return ro, nil, nil
	}
	tmp, err := os.MkdirTemp(o.w.TempDir, "bind-")
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	release := func() { _ = os.RemoveAll(tmp) }
	fi, err := os.Stat(src)
	if err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("bind mount source %s: %w", m.Selector, err)
	}
	if !fi.IsDir() {
		cp := filepath.Join(tmp, "file")
		if err := copyRegular(src, cp, fi.Mode().Perm()); err != nil {
			release()
			return executor.Mount{}, nil, fmt.Errorf("bind mount source %s: %w", m.Selector, err)
		}
		return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: cp, Options: bindOptions(false)}}}, release, nil
	}
	upper, work := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			release()
			return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
		}
	}
	ov := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + src, "upperdir=" + upper, "workdir=" + work}}
	return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{ov}}, release, nil
}

func bindOptions(readonly bool) []string {
	if readonly {
		return []string{"rbind", "ro"}
	}
	return []string{"rbind"}
}

// subpath resolves rel inside root (symlinks cannot leave it) and requires
// it to exist.
func subpath(root, rel string) (string, error) {
	p, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return "", fmt.Errorf("mount source %s: %w", rel, err)
	}
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mount source %s: %w", rel, errdefs.ErrNotFound)
		}
		return "", fmt.Errorf("mount source %s: %w", rel, err)
	}
	return p, nil
}

func copyRegular(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
