package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"

	"github.com/strata-build/strata/executor/seccomp"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []capability.Cap{
	capability.CAP_CHOWN, capability.CAP_DAC_OVERRIDE, capability.CAP_FSETID, capability.CAP_FOWNER,
	capability.CAP_MKNOD, capability.CAP_NET_RAW, capability.CAP_SETGID, capability.CAP_SETUID,
	capability.CAP_SETFCAP, capability.CAP_SETPCAP, capability.CAP_NET_BIND_SERVICE,
	capability.CAP_SYS_CHROOT, capability.CAP_KILL, capability.CAP_AUDIT_WRITE,
}

// defaultCapNames spells defaultCaps as seccomp profiles do.
var defaultCapNames = func() []string {
	names := make([]string, len(defaultCaps))
	for i, c := range defaultCaps {
		names[i] = "CAP_" + strings.ToUpper(c.String())
	}
	return names
}()

// DefaultPath is the PATH of a run whose Env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// process is the command, resolved inside the pivoted root.
type process struct {
	path string
	args []string
	env  []string
	cwd  string
	cred *syscall.Credential
	tty  *os.File // the terminal of a Spec.Tty run
}

// prepareProcess resolves the user, environment, working directory and
// executable of spec; it runs after pivot_root, so every lookup stays in the
// sandbox's root.
func prepareProcess(spec *Spec) (*process, error) {
	u, err := user.GetExecUserPath(spec.User, &user.ExecUser{Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return nil, fmt.Errorf("resolve user %q: %w", spec.User, err)
	}
	env := ProcessEnv(spec.Env, u.Home)
	path, _ := lookupEnv(env, "PATH")
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return nil, fmt.Errorf("create working directory: %w", err)
	}
	exe, err := lookPath(spec.Args[0], path, cwd)
	if err != nil {
		return nil, err
	}
	groups := make([]uint32, len(u.Sgids))
	for i, g := range u.Sgids {
		groups[i] = uint32(g)
	}
	return &process{
		path: exe, args: spec.Args, env: env, cwd: cwd,
		cred: &syscall.Credential{Uid: uint32(u.Uid), Gid: uint32(u.Gid), Groups: groups},
	}, nil
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// lookPath finds name in path the way a shell does.
func lookPath(name, path, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("exec %s: %w", name, err)
		}
		return p, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: executable file not found in $PATH", name)
}

// start forks the command from a thread that first drops to Docker's
// capabilities and loads the seccomp filter; the thread is discarded
// afterwards, so the init keeps its own privileges for cleanup.
func (p *process) start(prog seccomp.Program, insecure bool) (int, error) {
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if !insecure {
			if err := restrictThread(prog); err != nil {
				ch <- result{err: err}
				return
			}
		}
		attr := &os.ProcAttr{
			Dir:   p.cwd,
			Env:   p.env,
			Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
			Sys:   &syscall.SysProcAttr{Credential: p.cred, Setsid: true},
		}
		if p.tty != nil {
			// The terminal is the streams and the controlling terminal
			// of the command's new session.
			attr.Files = []*os.File{p.tty, p.tty, p.tty}
			attr.Sys.Setctty, attr.Sys.Ctty = true, 0
		}
		proc, err := os.StartProcess(p.path, p.args, attr)
		if err != nil {
			ch <- result{err: fmt.Errorf("exec %s: %w", p.args[0], err)}
			return
		}
		pid := proc.Pid
		_ = proc.Release()
		ch <- result{pid: pid}
	}()
	r := <-ch
	return r.pid, r.err
}

// restrictThread limits the calling thread to Docker's default
// capabilities and seccomp profile. The filter is loaded while the thread
// still has CAP_SYS_ADMIN, so no_new_privs can stay off.
func restrictThread(prog seccomp.Program) error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if err := caps.Load(); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	caps.Clear(capability.BOUNDING | capability.AMBIENT)
	caps.Set(capability.BOUNDING, defaultCaps...)
	if err := caps.Apply(capability.BOUNDS | capability.AMBS); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	if len(prog) > 0 {
		if err := prog.Load(); err != nil {
			return err
		}
	}
	caps.Clear(capability.CAPS)
	caps.Set(capability.CAPS, defaultCaps...)
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}
