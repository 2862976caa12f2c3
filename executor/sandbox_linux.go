package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor/network"
	"github.com/strata-build/strata/executor/seccomp"
)

// SandboxOptions configures a Sandbox.
type SandboxOptions struct {
	// StateDir holds the per-run temporary directories (the root's mount
	// point, generated /etc files); it is created if missing.
	StateDir string
	// StopTimeout is how long a cancelled run's command has, after the
	// signal that stops it, before everything in the sandbox is killed;
	// default DefaultStopTimeout.
	StopTimeout time.Duration
}

// DefaultStopTimeout is the grace a cancelled command gets, as docker stop
// gives.
const DefaultStopTimeout = 10 * time.Second

// Sandbox runs processes in Linux namespaces with the current binary as
// their init. It is safe for concurrent use.
type Sandbox struct {
	stateDir    string
	stopTimeout time.Duration
	seccomp     seccomp.Program
}

var _ Executor = (*Sandbox)(nil)

// NewSandbox compiles the seccomp filter once, prepares StateDir, and
// sweeps the network masquerading a killed process left behind.
func NewSandbox(opts SandboxOptions) (*Sandbox, error) {
	if opts.StateDir == "" {
		return nil, errors.New("new sandbox: no state dir")
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("new sandbox: %w", err)
	}
	prog, err := seccomp.Default(defaultCapNames)
	if err != nil {
		return nil, fmt.Errorf("new sandbox: %w", err)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	_ = network.Sweep() // best effort: a failure here fails the run's own setup visibly
	return &Sandbox{stateDir: opts.StateDir, stopTimeout: opts.StopTimeout, seccomp: prog}, nil
}

// initConfig is what the parent sends the init on its config pipe.
type initConfig struct {
	Spec     Spec
	Rootfs   string // empty directory to mount Spec.Root on
	Hosts    string // generated files to bind over the root's /etc
	Resolv   string
	Hostname string
	Seccomp  seccomp.Program
	// TtySize is the size of the terminal of a Spec.Tty run, when its
	// input is a terminal.
	TtySize *unix.Winsize `json:",omitempty"`
}

// initStatus is what the init reports on its status pipe.
type initStatus struct {
	Error string `json:",omitempty"`
	Exit  *int   `json:",omitempty"`
}

// Run runs spec to completion. See the package documentation.
func (s *Sandbox) Run(ctx context.Context, spec Spec, sio IO) error {
	if len(spec.Args) == 0 {
		return errors.New("run: no command")
	}
	if len(spec.Root) == 0 {
		return fmt.Errorf("run %s: no root filesystem", spec.Args[0])
	}
	dir, err := os.MkdirTemp(s.stateDir, "run-")
	if err != nil {
		return fmt.Errorf("run %s: %w", spec.Args[0], err)
	}
	defer os.RemoveAll(dir)
	if spec.Hostname == "" {
		spec.Hostname = randomID()
	}
	cfg, err := s.prepare(dir, spec)
	if err != nil {
		return fmt.Errorf("run %s: %w", spec.Args[0], err)
	}
	if err := s.runInit(ctx, cfg, sio); err != nil {
		return err
	}
	// The root's mount point must be empty: anything else means a mount
	// leaked out of the sandbox's namespace.
	return os.Remove(cfg.Rootfs)
}

// prepare writes the generated /etc files and the root's mount point.
func (s *Sandbox) prepare(dir string, spec Spec) (*initConfig, error) {
	cfg := &initConfig{
		Spec:     spec,
		Rootfs:   filepath.Join(dir, "rootfs"),
		Hosts:    filepath.Join(dir, "hosts"),
		Resolv:   filepath.Join(dir, "resolv.conf"),
		Hostname: filepath.Join(dir, "hostname"),
	}
	if !spec.Insecure {
		cfg.Seccomp = s.seccomp
	}
	if err := os.Mkdir(cfg.Rootfs, 0o755); err != nil {
		return nil, err
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	files := map[string][]byte{
		cfg.Hosts:    hostsFile(spec.Hostname, spec.ExtraHosts),
		cfg.Resolv:   resolvConf(hostResolv, spec.Network == NetworkHost),
		cfg.Hostname: []byte(spec.Hostname + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// runInit starts the init, sends cfg, and waits for its report.
func (s *Sandbox) runInit(ctx context.Context, cfg *initConfig, sio IO) error {
	name := cfg.Spec.Args[0]
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	defer cfgR.Close()
	defer cfgW.Close()
	statR, statW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	defer statR.Close()
	defer statW.Close()

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initArg0}
	// The init's own environment is empty; the command gets Spec.Env. A
	// race-enabled build would otherwise sleep a second at every exit.
	cmd.Env = []string{"GORACE=atexit_sleep_ms=0"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sio.Stdin, sio.Stdout, sio.Stderr
	cmd.ExtraFiles = []*os.File{cfgR, statW}
	var consR, consW *os.File
	if cfg.Spec.Tty {
		// The init makes the terminal in the sandbox's devpts and sends
		// its master back; the run's streams are the terminal's.
		if consR, consW, err = socketPair(); err != nil {
			return fmt.Errorf("run %s: %w", name, err)
		}
		defer consR.Close()
		defer consW.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
		cmd.ExtraFiles = append(cmd.ExtraFiles, consW)
		cfg.TtySize, _ = terminalSize(sio.Stdin)
	}
	// Cancelling asks the command to stop with the signal that cancelled
	// the build; the init forwards it. After the grace, Wait kills the
	// init, and the kernel the whole pid namespace.
	cmd.Cancel = func() error { return cmd.Process.Signal(StopSignal(ctx)) }
	cmd.WaitDelay = s.stopTimeout
	flags := syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	if cfg.Spec.Network != NetworkHost {
		flags |= syscall.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: uintptr(flags), Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: start sandbox: %w", name, err)
	}
	cfgR.Close()
	statW.Close()
	if consW != nil {
		consW.Close()
	}
	if cfg.Spec.Network == NetworkDefault {
		link := attachNetwork(cmd.Process.Pid, sio.Stderr)
		defer detachNetwork(link, sio.Stderr)
	}

	status := make(chan initStatus, 1)
	go func() { status <- readStatus(statR) }()
	encErr := json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()
	var cons *Console
	if consR != nil && encErr == nil {
		// Nothing comes when the init fails before the command starts.
		if master, err := recvFile(consR); err == nil && master != nil {
			if cons, err = NewConsole(master, sio); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return fmt.Errorf("run %s: %w", name, err)
			}
		}
	}
	waitErr := cmd.Wait()
	if cons != nil {
		if err := cons.Close(); err != nil && sio.Stderr != nil {
			fmt.Fprintf(sio.Stderr, "warning: %v\n", err)
		}
	}
	st := <-status
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("run %s: %w", name, ctx.Err())
	case st.Error != "":
		return fmt.Errorf("run %s: %s", name, st.Error)
	case st.Exit != nil && *st.Exit != 0:
		return &ExitError{Code: *st.Exit}
	case st.Exit != nil:
		return nil
	case encErr != nil:
		return fmt.Errorf("run %s: send sandbox config: %w", name, encErr)
	}
	return fmt.Errorf("run %s: sandbox init died: %v", name, waitErr)
}

// attachNetwork links the init's network namespace to the host. A failure
// leaves the run with loopback only, and says so on the step's stderr.
func attachNetwork(pid int, stderr io.Writer) *network.Link {
	link, err := network.Attach(pid)
	if err != nil && stderr != nil {
		fmt.Fprintf(stderr, "warning: network default: %v; the step has loopback only\n", err)
	}
	return link
}

func detachNetwork(link *network.Link, stderr io.Writer) {
	if link == nil {
		return
	}
	if err := link.Detach(); err != nil && stderr != nil {
		fmt.Fprintf(stderr, "warning: %v\n", err)
	}
}

// StopSignal is the signal that stops the command of a cancelled run:
// SIGINT when ctx was cancelled by an interrupt (signal.NotifyContext
// records it as the cause), SIGTERM otherwise.
func StopSignal(ctx context.Context) syscall.Signal {
	if cause := context.Cause(ctx); cause != nil && cause.Error() == os.Interrupt.String()+" signal received" {
		return syscall.SIGINT
	}
	return syscall.SIGTERM
}

func readStatus(r io.Reader) initStatus {
	data, _ := io.ReadAll(r)
	var st initStatus
	if err := json.Unmarshal(bytes.TrimSpace(data), &st); err != nil && len(data) > 0 {
		st.Error = fmt.Sprintf("bad sandbox status %q", data)
	}
	return st
}

// randomID returns 12 hex digits.
func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// socketPair returns two connected unix stream sockets.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "socket"), os.NewFile(uintptr(fds[1]), "socket"), nil
}

// sendFile passes f's descriptor over the unix socket sock.
func sendFile(sock, f *os.File) error {
	var err error
	control(f, func(fd int) {
		control(sock, func(s int) { err = unix.Sendmsg(s, []byte{0}, unix.UnixRights(fd), nil, 0) })
	})
	return err
}

// recvFile receives a descriptor sent by sendFile; nil when the other end
// closed without sending one. The file does not block.
func recvFile(sock *os.File) (*os.File, error) {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	control(sock, func(s int) {
		for {
			n, oobn, _, _, err = unix.Recvmsg(s, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err != unix.EINTR {
				return
			}
		}
	})
	if err != nil || n == 0 {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive descriptor: %d messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive descriptor: %v", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "ptmx"), nil
}
