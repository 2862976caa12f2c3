package ops

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// execOp runs a RUN step in the sandbox over a writable snapshot of its
// root input.
type execOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.ExecOp
}

// ExitError is a RUN that exited non-zero. It wraps the executor's error,
// so errors.As finds the *executor.ExitError through it too.
type ExitError struct {
	Args []string
	Code int
	Err  error // the executor's: an *executor.ExitError or one wrapping it
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("process %q did not complete successfully: exit code: %d", strings.Join(e.Args, " "), e.Code)
}

func (e *ExitError) Unwrap() error { return e.Err }

func (o *execOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	cm := &solver.CacheMap{Digest: opDigest("exec", o.op), Deps: make([]solver.Dep, len(o.v.Inputs))}
	cm.Components = append(cm.Components,
		solver.Component{Name: "command", Value: strings.Join(o.op.Args, " ")},
		solver.Component{Name: "workdir", Value: o.op.Cwd},
		solver.Component{Name: "user", Value: o.op.User},
		solver.Component{Name: "network", Value: string(o.op.Network)},
	)
	args := map[string]bool{}
	for _, a := range o.v.Meta.BuildArgs {
		args[a] = true
	}
	for _, e := range o.op.Env {
		k, v, _ := strings.Cut(e, "=")
		name := "env " + k
		if args[k] {
			name = "build arg " + k
		}
		cm.Components = append(cm.Components, solver.Component{Name: name, Value: v})
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
		ref, err := ready(ctx, inputs[root.Input])
		if err != nil {
			return nil, err
		}
		parent = ref.Snapshot
	}
	active := randomID("run-")
	rootMounts, err := o.w.Snapshotter.Prepare(ctx, active, parent)
	if err != nil {
		return nil, fmt.Errorf("prepare root: %w", err)
	}
	ms := &mountSet{}
	defer ms.release()
	spec, err := o.spec(ctx, rootMounts, inputs, ms)
	if err == nil {
		err = o.run(ctx, spec, ms)
	}
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && o.w.OnRunError != nil {
			o.w.OnRunError(ctx, o.failedRun(spec, ee))
		}
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, err
	}
	return o.w.commit(ctx, active)
}

// FailedRun is a RUN step whose command exited non-zero, passed to
// Worker.OnRunError with everything the command ran with still in place:
// its root filesystem as the command left it, not committed, and its
// mounts (cache, bind, secret, ssh) still prepared. Both are released
// when OnRunError returns.
type FailedRun struct {
	// Name is the step's name, as progress shows it.
	Name string
	// Err is the command's failure, the step's error.
	Err *ExitError
	// Spec is how the command ran.
	Spec executor.Spec
	// Mounts are the step's RUN --mount options, for a description.
	Mounts []llb.Mount
	// Hidden names the variables of Spec.Env whose values are not to be
	// shown: secrets, and the proxy settings (their URLs may hold
	// credentials).
	Hidden []string

	exec executor.Executor
}

// Shell runs shell (a path, or a name found in the step's PATH) in the
// failed command's sandbox: its root filesystem as the command left it,
// its mounts, environment, user, working directory and network; on a
// terminal joined to sio (see executor.Spec.Tty). An exit code of the
// shell is an *executor.ExitError.
func (f *FailedRun) Shell(ctx context.Context, shell string, sio executor.IO) error {
	spec := f.Spec
	spec.Args = []string{shell}
	spec.Tty = true
	return f.exec.Run(ctx, spec, sio)
}

func (o *execOp) failedRun(spec executor.Spec, err *ExitError) *FailedRun {
	f := &FailedRun{Name: o.v.Meta.Name, Err: err, Spec: spec, Mounts: o.op.Mounts[1:], exec: o.w.Executor}
	for name := range o.op.SecretEnv {
		f.Hidden = append(f.Hidden, name)
	}
	for _, e := range o.op.ProxyEnv {
		name, _, _ := strings.Cut(e, "=")
		f.Hidden = append(f.Hidden, name)
	}
	slices.Sort(f.Hidden)
	return f
}

// spec builds the executor spec of the step, preparing its mounts into ms.
func (o *execOp) spec(ctx context.Context, rootMounts []mount.Mount, inputs []solver.Result, ms *mountSet) (executor.Spec, error) {
	spec := executor.Spec{
		Args:     o.op.Args,
		Env:      append(slices.Clone(o.op.Env), o.op.ProxyEnv...),
		Cwd:      o.op.Cwd,
		User:     o.op.User,
		Hostname: o.op.Hostname,
		Root:     rootMounts,
		Insecure: o.op.Security == llb.SecurityInsecure,
	}
	if spec.Insecure && !o.w.AllowInsecure {
		return spec, errors.New("RUN --security=insecure is not allowed: the build needs --allow security.insecure")
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
	env, err := o.secretEnv()
	if err != nil {
		return spec, err
	}
	spec.Env = append(spec.Env, env...)
	for _, m := range o.op.Mounts[1:] {
		em, ok, err := o.mount(ctx, m, inputs, ms)
		if err != nil {
			return spec, err
		}
		if !ok {
			continue
		}
		spec.Mounts = append(spec.Mounts, em)
		if m.Type == llb.MountSSH && !ms.sshSock {
			ms.sshSock = true
			spec.Env = append(spec.Env, "SSH_AUTH_SOCK="+m.Dest)
		}
	}
	return spec, nil
}

// run runs the step and leaves no mount point it needed in the root.
func (o *execOp) run(ctx context.Context, spec executor.Spec, ms *mountSet) error {
	dests := make([]string, 0, len(spec.Mounts))
	for _, m := range spec.Mounts {
		dests = append(dests, m.Dest)
	}
	st, err := o.w.findStubs(spec.Root, dests)
	if err != nil {
		return err
	}
	stdout := &logWriter{sink: o.w.Progress, v: o.v, stream: 1}
	stderr := &logWriter{sink: o.w.Progress, v: o.v, stream: 2}
	if err := o.w.Executor.Run(ctx, spec, executor.IO{Stdout: stdout, Stderr: stderr}); err != nil {
		var ee *executor.ExitError
		if errors.As(err, &ee) {
			return &ExitError{Args: o.op.Args, Code: ee.Code, Err: err}
		}
		return err
	}
	ms.release()
	return o.w.removeStubs(spec.Root, st)
}

// mountSet holds what a step's mounts need until the step ends.
type mountSet struct {
	releases []func()
	sshSock  bool // SSH_AUTH_SOCK is set
}

func (s *mountSet) add(f func()) {
	if f != nil {
		s.releases = append(s.releases, f)
	}
}

// release undoes the mounts' preparations, last first; it may be called twice.
func (s *mountSet) release() {
	for i := len(s.releases) - 1; i >= 0; i-- {
		s.releases[i]()
	}
	s.releases = nil
}

// mount prepares one RUN --mount; ok is false for an optional mount whose
// source (a secret, an agent) was not given.
func (o *execOp) mount(ctx context.Context, m llb.Mount, inputs []solver.Result, ms *mountSet) (em executor.Mount, ok bool, err error) {
	var release func()
	switch m.Type {
	case llb.MountTmpfs:
		opts := []string{"mode=1777"}
		if m.Tmpfs != nil && m.Tmpfs.Size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(m.Tmpfs.Size, 10))
		}
		return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs", Options: opts}}}, true, nil
	case llb.MountCache:
		em, release, err = o.cacheMount(ctx, m, inputs)
	case llb.MountBind:
		em, release, err = o.bindMount(ctx, m, inputs)
	case llb.MountSecret:
		em, release, err = o.secretMount(m)
	case llb.MountSSH:
		em, release, err = o.sshMount(m)
	default:
		return em, false, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
	}
	if err != nil {
		return em, false, err
	}
	ms.add(release)
	return em, em.Dest != "", nil
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
