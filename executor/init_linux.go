package executor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor/network"
)

// initArg0 is the argv[0] that turns the re-executed binary into the
// sandbox's init.
const initArg0 = "strata-sandbox-init"

// The init's inherited descriptors besides stdio.
const (
	configFD = 3
	statusFD = 4
	// consoleFD, in a Spec.Tty run, takes the terminal's master back to
	// the parent.
	consoleFD = 5
)

// MaybeInit must be the first call in main() and in TestMain of any package
// whose tests run the sandbox. In a normal process it returns at once; in
// the re-executed init it runs the sandbox and exits.
func MaybeInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	status := os.NewFile(statusFD, "status")
	code, err := runInit()
	var st initStatus
	if err != nil {
		st.Error = err.Error()
	} else {
		st.Exit = &code
	}
	_ = json.NewEncoder(status).Encode(st)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// runInit runs in the new namespaces: it builds the root, starts the
// command and returns its exit code.
func runInit() (int, error) {
	unix.CloseOnExec(configFD)
	unix.CloseOnExec(statusFD)
	unix.CloseOnExec(consoleFD) // EBADF when there is none
	var cfg initConfig
	f := os.NewFile(configFD, "config")
	err := json.NewDecoder(f).Decode(&cfg)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("read sandbox config: %w", err)
	}
	spec := &cfg.Spec
	r := &rootfs{dir: cfg.Rootfs}
	if err := r.setup(&cfg); err != nil {
		return 0, err
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return 0, fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
	}
	if spec.Network != NetworkHost {
		if err := network.LoopbackUp(); err != nil {
			return 0, err
		}
	}
	if err := pivot(cfg.Rootfs); err != nil {
		return 0, err
	}
	defer r.removeStubs()
	proc, err := prepareProcess(spec)
	if err != nil {
		return 0, err
	}
	if spec.Tty {
		if proc.tty, err = openTerminal(cfg.TtySize, int(proc.cred.Uid)); err != nil {
			return 0, err
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	pid, err := proc.start(cfg.Seccomp, spec.Insecure)
	if proc.tty != nil {
		proc.tty.Close() // the command's now: the master sees EIO when it exits
	}
	if err != nil {
		return 0, err
	}
	go forwardSignals(sigs, pid)
	return reap(pid), nil
}

// openTerminal makes a pseudo-terminal in the sandbox's own devpts, of the
// given size, owned by uid as a login terminal is; it sends the master to
// the parent and returns the other side.
func openTerminal(size *unix.Winsize, uid int) (*os.File, error) {
	master, slave, err := OpenPTY("/dev/pts/ptmx")
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	defer master.Close()
	if size != nil {
		control(master, func(fd int) { err = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, size) })
	}
	if err == nil {
		control(slave, func(fd int) { err = unix.Fchown(fd, uid, -1) })
	}
	if err == nil {
		sock := os.NewFile(consoleFD, "console")
		err = sendFile(sock, master)
		sock.Close()
	}
	if err != nil {
		slave.Close()
		return nil, fmt.Errorf("terminal: %w", err)
	}
	return slave, nil
}

// forwardSignals passes the stop signals the init receives to the
// command's process group (the command leads its own session).
func forwardSignals(sigs <-chan os.Signal, pid int) {
	for sig := range sigs {
		_ = unix.Kill(-pid, sig.(unix.Signal))
	}
}

// reap waits as PID 1 for every child. When the command (pid) exits it
// kills everything left in the pid namespace; it returns the command's exit
// code, 128+signal for a killed command.
func reap(pid int) int {
	code := -1
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing left
		}
		if wpid == pid {
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
		if code >= 0 {
			_ = unix.Kill(-1, unix.SIGKILL)
		}
	}
	return code
}
