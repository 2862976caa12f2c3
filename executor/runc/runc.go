//go:build linux

// Package runc runs RUN steps with an OCI runtime (runc) instead of the
// built-in sandbox.
//
// A Runtime owns a directory under StateDir/runc, locked for the life of its
// process: runc's state (--root) and its runs' bundles live there, and New
// sweeps the directories of killed processes, deleting the containers a
// killed `runc run` leaves running.
//
// For each run, Runtime writes a bundle in its directory: the directory
// rootfs, on which it mounts the Spec's Root (a private mount in the
// caller's namespace), the generated hosts, resolv.conf and hostname files,
// and config.json, the runtime-spec translation of the Spec with the same
// isolation the sandbox gives: new mount, pid, uts, ipc and (unless
// NetworkHost) network namespaces, Docker's default capabilities and
// seccomp profile, masked and read-only paths, a minimal /dev and a
// read-only /sys. The user is resolved in the root's /etc/passwd and
// /etc/group before the runtime starts. It then runs `runc run --bundle` in
// the foreground, with the run's streams as the container's, and returns
// the container's exit code as an *executor.ExitError. Afterwards it
// removes the mount points it had to create in the root, unmounts it and
// deletes the bundle.
//
// The command is the container's PID 1, as in `docker run` without --init:
// a cancelled run's command gets the stop signal (see executor.StopSignal)
// and, after StopTimeout, SIGKILL.
//
//	rt, err := runc.New(runc.Options{StateDir: dir})
//	err = rt.Run(ctx, executor.Spec{Args: []string{"/bin/sh", "-c", "make"}, Root: mounts}, executor.IO{Stdout: w, Stderr: w})
package runc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/network"
	"github.com/strata-build/strata/mount"
)

// Options configures a Runtime.
type Options struct {
	// StateDir holds the bundles and runc's own state (--root); it is
	// created if missing.
	StateDir string
	// Binary is the runtime to run; default "runc", found in PATH.
	Binary string
	// StopTimeout is the grace a cancelled run's command gets after the
	// stop signal; default executor.DefaultStopTimeout.
	StopTimeout time.Duration
}

// Runtime runs processes with an OCI runtime. It is safe for concurrent use.
type Runtime struct {
	own         string   // StateDir/runc/NAME: runc's root and the bundles
	lock        *os.File // held for the process's life: see Sweep
	binary      string
	stopTimeout time.Duration
}

var _ executor.Executor = (*Runtime)(nil)

// New finds the runtime binary, prepares StateDir, sweeps what killed
// processes left in it (see Sweep) and claims the Runtime's own runc root
// and bundle directory there.
func New(opts Options) (*Runtime, error) {
	if opts.StateDir == "" {
		return nil, errors.New("new runc runtime: no state dir")
	}
	if opts.Binary == "" {
		opts.Binary = "runc"
	}
	bin, err := exec.LookPath(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("new runc runtime: %w", err)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = executor.DefaultStopTimeout
	}
	for _, d := range []string{opts.StateDir, filepath.Join(opts.StateDir, "runc")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("new runc runtime: %w", err)
		}
	}
	_ = network.Sweep() // best effort, as the sandbox does
	opts.Binary = bin
	if err := Sweep(opts); err != nil {
		return nil, fmt.Errorf("new runc runtime: %w", err)
	}
	own, lock, err := claim(filepath.Join(opts.StateDir, "runc"))
	if err != nil {
		return nil, fmt.Errorf("new runc runtime: %w", err)
	}
	return &Runtime{own: own, lock: lock, binary: bin, stopTimeout: opts.StopTimeout}, nil
}

// bundle is one run's bundle directory and what was made in its root.
type bundle struct {
	dir    string
	rootfs string
	stubs  *executor.Stubs // mount points created in the root
}

// Run runs spec to completion. See the package documentation.
func (r *Runtime) Run(ctx context.Context, spec executor.Spec, sio executor.IO) (err error) {
	if len(spec.Args) == 0 {
		return errors.New("run: no command")
	}
	name := spec.Args[0]
	if len(spec.Root) == 0 {
		return fmt.Errorf("run %s: no root filesystem", name)
	}
	if spec.Hostname == "" {
		spec.Hostname = randomID()
	}
	dir, err := os.MkdirTemp(r.own, "run-")
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	b := &bundle{dir: dir, rootfs: filepath.Join(dir, "rootfs")}
	defer os.RemoveAll(dir)
	if err := os.Mkdir(b.rootfs, 0o755); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if err := mountRoot(spec.Root, b.rootfs); err != nil {
		return fmt.Errorf("run %s: mount root: %w", name, err)
	}
	defer func() {
		b.removeStubs()
		if uerr := mount.Unmount(b.rootfs); uerr != nil && err == nil {
			err = fmt.Errorf("run %s: %w", name, uerr)
		}
	}()
	var netns string
	if spec.Network == executor.NetworkDefault {
		ns, link := attachNetwork(sio)
		if ns != nil {
			defer ns.Close()
			netns = ns.Path()
		}
		if link != nil {
			defer detachNetwork(link, sio)
		}
	}
	cfg, err := b.config(spec, netns)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	return r.runBundle(ctx, b, name, spec.Tty, sio)
}

// mountRoot mounts ms on dir as a private mount, so that nothing mounted
// under it propagates to or from the host's other mounts.
func mountRoot(ms []mount.Mount, dir string) error {
	if err := mount.All(ms, dir); err != nil {
		return err
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		_ = mount.Unmount(dir)
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	return nil
}

// attachNetwork makes a network namespace linked to the host. On failure
// the run gets runc's own namespace (loopback only) and a warning.
func attachNetwork(sio executor.IO) (*network.Namespace, *network.Link) {
	ns, err := network.NewNamespace()
	if err != nil {
		warn(sio, "warning: network default: %v; the step has loopback only", err)
		return nil, nil
	}
	link, err := network.Attach(ns.Tid)
	if err != nil {
		warn(sio, "warning: network default: %v; the step has loopback only", err)
	}
	return ns, link
}

func detachNetwork(link *network.Link, sio executor.IO) {
	if err := link.Detach(); err != nil {
		warn(sio, "warning: %v", err)
	}
}

func warn(sio executor.IO, format string, args ...any) {
	if sio.Stderr != nil {
		fmt.Fprintf(sio.Stderr, format+"\n", args...)
	}
}

// runBundle runs the bundle in the foreground and maps its outcome.
//
// A tty run gets a terminal on the host, joined to sio by a Console: runc
// is started on it as its session's controlling terminal, makes the
// container's own terminal, copies between the two and, as the session's
// foreground process, gets the SIGWINCH of each resize and passes the size
// on.
func (r *Runtime) runBundle(ctx context.Context, b *bundle, name string, tty bool, sio executor.IO) error {
	id := "strata-" + randomID()
	root := filepath.Join(r.own, "root")
	logPath := filepath.Join(b.dir, "runc.log")
	cmd := exec.Command(r.binary, "--root", root, "--log", logPath, "--log-format", "json",
		"run", "--bundle", b.dir, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sio.Stdin, sio.Stdout, sio.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// The container's streams close when it ends; a process that escaped
	// its pid namespace cannot hold them longer than this.
	cmd.WaitDelay = r.stopTimeout
	var slave *os.File
	if tty {
		master, s, err := executor.OpenPTY("/dev/ptmx")
		if err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
		slave = s
		defer slave.Close()
		cons, err := executor.NewConsole(master, sio)
		if err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
		defer func() {
			if err := cons.Close(); err != nil {
				warn(sio, "warning: %v", err)
			}
		}()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: start %s: %w", name, r.binary, err)
	}
	if slave != nil {
		// The terminal is runc's now: the master sees EIO once it exits.
		slave.Close()
	}
	stopped := make(chan struct{})
	waited := make(chan struct{})
	go func() {
		defer close(stopped)
		r.stopOnCancel(ctx, root, id, waited)
	}()
	waitErr := cmd.Wait()
	close(waited)
	<-stopped
	_ = exec.Command(r.binary, "--root", root, "delete", "--force", id).Run()
	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w", name, ctx.Err())
	}
	if msg := runtimeError(logPath); msg != "" {
		return fmt.Errorf("run %s: %s", name, msg)
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		return &executor.ExitError{Code: ee.ExitCode()}
	}
	if waitErr != nil {
		return fmt.Errorf("run %s: %w", name, waitErr)
	}
	return nil
}

// stopOnCancel sends the container the stop signal when ctx is cancelled,
// and SIGKILL after the stop timeout, until waited is closed.
func (r *Runtime) stopOnCancel(ctx context.Context, root, id string, waited <-chan struct{}) {
	select {
	case <-waited:
		return
	case <-ctx.Done():
	}
	sig := executor.StopSignal(ctx)
	_ = exec.Command(r.binary, "--root", root, "kill", id, fmt.Sprint(int(sig))).Run()
	timer := time.NewTimer(r.stopTimeout)
	defer timer.Stop()
	select {
	case <-waited:
	case <-timer.C:
		_ = exec.Command(r.binary, "--root", root, "kill", id, "KILL").Run()
	}
}

// runtimeError returns the runtime's own error messages from its JSON log:
// the container never ran when there are any.
func runtimeError(logPath string) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var msgs []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			msgs = append(msgs, entry.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// randomID returns 12 hex digits.
func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
