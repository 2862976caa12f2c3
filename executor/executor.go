// Package executor runs the commands of RUN steps in a sandbox.
//
// An Executor runs one process described by a Spec: its arguments,
// environment, working directory and user; a root filesystem given as mounts
// (usually a writable overlay snapshot) and more Mounts on top of it; a
// network mode; and whether the step is insecure. It streams the process's
// output to an IO as it comes and returns nil on exit code 0, an *ExitError
// with the code otherwise, or another error when the sandbox could not be
// set up.
//
// Sandbox is the built-in Executor. It re-executes the current binary as the
// sandbox's init (MaybeInit must therefore be the first call in main and in
// TestMain) in new mount, pid, uts, ipc and (unless NetworkHost) network
// namespaces. The init mounts the root and everything else inside its own
// mount namespace, pivots into the root, and starts the command as the
// requested user with Docker's default capabilities and seccomp profile.
// As PID 1 it reaps orphans; when the command exits it kills whatever the
// command left behind and reports the exit code. Cancelling the context
// sends the init the stop signal (StopSignal: SIGINT for a build
// interrupted by Ctrl-C, else SIGTERM), which it forwards to the command's
// process group; after StopTimeout the init is killed, and the kernel kills
// the whole pid namespace with it. The runc subpackage is the other
// Executor, running the same Spec with an OCI runtime.
//
//	sb, err := executor.NewSandbox(executor.SandboxOptions{StateDir: dir})
//	err = sb.Run(ctx, executor.Spec{Args: []string{"/bin/sh", "-c", "make"}, Root: mounts}, executor.IO{Stdout: w, Stderr: w})
//	var exit *executor.ExitError
//	if errors.As(err, &exit) { ... exit.Code ... }
package executor

import (
	"context"
	"fmt"
	"io"

	"github.com/strata-build/strata/mount"
)

// Executor runs one process to completion.
type Executor interface {
	Run(ctx context.Context, spec Spec, io IO) error
}

// NetworkMode selects the network namespace of a run.
type NetworkMode int

const (
	// NetworkDefault gives the run a private network namespace with
	// loopback up and eth0, a veth link to the host through which the run
	// reaches what the host reaches (see package network); without the
	// permission to make the link, loopback only and a warning on stderr.
	NetworkDefault NetworkMode = iota
	// NetworkNone gives the run a private network namespace with only
	// loopback.
	NetworkNone
	// NetworkHost shares the caller's network namespace.
	NetworkHost
)

// String returns the --network spelling of n.
func (n NetworkMode) String() string {
	switch n {
	case NetworkDefault:
		return "default"
	case NetworkNone:
		return "none"
	case NetworkHost:
		return "host"
	}
	return fmt.Sprintf("network(%d)", int(n))
}

// Mount places filesystems at Dest inside the sandbox, in order.
type Mount struct {
	// Dest is an absolute path inside the sandbox.
	Dest string
	// Mounts are what to mount there; Type may be "bind", "overlay" or
	// "tmpfs" (Options such as "size=64m", "ro").
	Mounts []mount.Mount
}

// HostIP is one extra line of the generated /etc/hosts.
type HostIP struct {
	Host, IP string
}

// Spec describes one run.
type Spec struct {
	Args []string
	// Env is the environment, KEY=value. PATH defaults to the usual system
	// path and HOME to the user's home directory from /etc/passwd.
	Env []string
	// Cwd is the working directory, created if missing; default "/".
	Cwd string
	// User is "", "name", "uid", "name:group" or "uid:gid", resolved in
	// the root filesystem's /etc/passwd and /etc/group, with the user's
	// supplementary groups. Empty means root.
	User string
	// Hostname defaults to a short random id.
	Hostname string
	// Root is the writable root filesystem.
	Root []mount.Mount
	// Mounts are mounted over Root, shallowest Dest first.
	Mounts     []Mount
	Network    NetworkMode
	ExtraHosts []HostIP
	// Insecure (RUN --security=insecure) keeps all capabilities, loads no
	// seccomp filter, masks nothing in /proc and mounts /sys read-write.
	Insecure bool
	// Tty gives the process a new pseudo-terminal as its stdin, stdout,
	// stderr and controlling terminal, for an interactive shell. What
	// IO.Stdin gives is typed into it and what it prints goes to
	// IO.Stdout (IO.Stderr gets only the executor's warnings). When
	// IO.Stdin is a terminal, it is in raw mode during the run and the
	// process's terminal follows its size.
	Tty bool
}

// IO connects the process's standard streams. Nil means /dev/null.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitError reports a process that exited with a non-zero code. A process
// killed by a signal reports 128 plus the signal number.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("exit code: %d", e.Code)
}
