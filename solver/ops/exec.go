package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// execOp runs a RUN step in the sandbox over a writable snapshot of its
// root input.
type execOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.ExecOp
}

// ExitError is a RUN that exited non-zero.
type ExitError struct {
	Args []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("process %q did not complete successfully: exit code: %d", strings.Join(e.Args, " "), e.Code)
}

func (o *execOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	cm := &solver.CacheMap{Digest: opDigest("exec", o.op), Deps: make([]solver.Dep, len(o.v.Inputs))}
	cm.Components = append(cm.Components,
		solver.Component{Name: "command", Value: strings.Join(o.op.Args, " ")},
		solver.Component{Name: "workdir", Value: o.op.Cwd},
		solver.Component{Name: "user", Value: o.op.User},
		solver.Component{Name: "network", Value: string(o.op.Network)},
	)
	for _, e := range o.op.Env {
		k, v, _ := strings.Cut(e, "=")
		cm.Components = append(cm.Components, solver.Component{Name: "env " + k, Value: v})
	}
	for _, m := range o.op.Mounts[1:] {
		cm.Components = append(cm.Components, solver.Component{Name: "mount " + m.Dest, Value: string(m.Type)})
	}
	return cm, nil
}

func (o *execOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	root := o.op.Mounts[0]
	parent := ""
	if root.Input >= 0 {
		parent = refOf(inputs[root.Input]).Snapshot
	}
	active := randomID("run-")
	rootMounts, err := o.w.Snapshotter.Prepare(ctx, active, parent)
	if err != nil {
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	cleanup := []func(){}
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	spec := executor.Spec{
		Args:     o.op.Args,
		Env:      o.op.Env,
		Cwd:      o.op.Cwd,
		User:     o.op.User,
		Hostname: o.op.Hostname,
		Root:     rootMounts,
		Insecure: o.op.Security == llb.SecurityInsecure,
	}
	switch o.op.Network {
	case llb.NetHost:
		spec.Network = executor.NetworkHost
	case llb.NetNone:
		spec.Network = executor.NetworkNone
	default:
		spec.Network = executor.NetworkDefault
	}
	for _, h := range o.op.ExtraHosts {
		host, ip, _ := strings.Cut(h, "=")
		spec.ExtraHosts = append(spec.ExtraHosts, executor.HostIP{Host: host, IP: ip})
	}
	for _, m := range o.op.Mounts[1:] {
		em, release, err := o.mount(ctx, m, inputs)
		if err != nil {
			_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
			return nil, err
		}
		if release != nil {
			cleanup = append(cleanup, release)
		}
		spec.Mounts = append(spec.Mounts, em)
	}
	stdout := &logWriter{sink: o.w.Progress, v: o.v, stream: 1}
	stderr := &logWriter{sink: o.w.Progress, v: o.v, stream: 2}
	if err := o.w.Executor.Run(ctx, spec, executor.IO{Stdout: stdout, Stderr: stderr}); err != nil {
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		var ee *executor.ExitError
		if errors.As(err, &ee) {
			return nil, &ExitError{Args: o.op.Args, Code: ee.Code}
		}
		return nil, err
	}
	return o.w.commit(ctx, active)
}

// mount prepares one RUN --mount. The release func undoes what it made.
func (o *execOp) mount(ctx context.Context, m llb.Mount, inputs []solver.Result) (executor.Mount, func(), error) {
	switch m.Type {
	case llb.MountTmpfs:
		opts := []string{"mode=1777"}
		if m.Tmpfs != nil && m.Tmpfs.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.Tmpfs.Size, 10))
		}
		return executor.Mount{Dest: m.Dest, Mounts: []snapshot.Mount{{Type: "tmpfs", Source: "tmpfs", Options: opts}}}, nil, nil
	case llb.MountCache:
		return o.cacheMount(m)
	case llb.MountBind:
		return o.bindMount(ctx, m, inputs)
	}
	return executor.Mount{}, nil, fmt.Errorf("RUN --mount=type=%s is not supported yet", m.Type)
}

func (o *execOp) cacheMount(m llb.Mount) (executor.Mount, func(), error) {
	id := m.Dest
	if m.Cache != nil && m.Cache.ID != "" {
		id = m.Cache.ID
	}
	dir := filepath.Join(o.w.CacheMountDir, opDigest("cache-mount", id).Encoded())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return executor.Mount{}, nil, fmt.Errorf("cache mount %s: %w", m.Dest, err)
	}
	if m.Cache != nil && (m.Cache.UID != 0 || m.Cache.GID != 0) {
		_ = os.Lchown(dir, m.Cache.UID, m.Cache.GID)
	}
	if m.Cache != nil && m.Cache.Mode != 0 {
		_ = os.Chmod(dir, os.FileMode(m.Cache.Mode))
	}
	opts := []string{"rbind"}
	if m.Readonly {
		opts = append(opts, "ro")
	}
	return executor.Mount{Dest: m.Dest, Mounts: []snapshot.Mount{{Type: "bind", Source: dir, Options: opts}}}, nil, nil
}

func (o *execOp) bindMount(ctx context.Context, m llb.Mount, inputs []solver.Result) (executor.Mount, func(), error) {
	var ref *Ref
	if m.Input >= 0 {
		ref = refOf(inputs[m.Input])
	} else {
		ref = &Ref{}
	}
	if ref.Dir != "" {
		src, err := confinedPath(ref.Dir, m.Selector)
		if err != nil {
			return executor.Mount{}, nil, err
		}
		// The context is never written: a rw bind of it is read-only here.
		return executor.Mount{Dest: m.Dest, Mounts: []snapshot.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}}, nil, nil
	}
	if m.Selector != "" && m.Selector != "/" {
		return executor.Mount{}, nil, fmt.Errorf("RUN --mount=type=bind,source=%s from a stage or image is not supported yet", m.Selector)
	}
	key := randomID("bind-")
	var mounts []snapshot.Mount
	var err error
	if m.Readonly {
		mounts, err = o.w.Snapshotter.View(ctx, key, ref.Snapshot)
	} else {
		// Writes to a rw bind mount are discarded with this snapshot.
		mounts, err = o.w.Snapshotter.Prepare(ctx, key, ref.Snapshot)
	}
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	release := func() { _ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), key) }
	return executor.Mount{Dest: m.Dest, Mounts: mounts}, release, nil
}

// confinedPath joins a context-relative path to dir, refusing escapes.
func confinedPath(dir, rel string) (string, error) {
	clean := filepath.Join("/", rel)
	p := filepath.Join(dir, clean)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("bind mount source %s: %w", rel, err)
	}
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if real != base && !strings.HasPrefix(real, base+string(filepath.Separator)) {
		return "", fmt.Errorf("bind mount source %s is outside the build context", rel)
	}
	return real, nil
}
