package ops

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
)

// secretMount exposes a build secret as a read-only file at the mount's
// target. The file is written to a private tmpfs under the process's temp
// dir, never to disk, and bound into the step; the release unmounts the
// tmpfs. A secret that was not given is an error when required, else the
// mount is skipped.
func (o *execOp) secretMount(m llb.Mount) (executor.Mount, func(), error) {
	sm := m.Secret
	if sm == nil {
		return executor.Mount{}, nil, fmt.Errorf("secret mount %s: no secret id", m.Dest)
	}
	data, ok := o.w.Secrets[sm.ID]
	if !ok {
		if sm.Required {
			return executor.Mount{}, nil, fmt.Errorf("secret %q is required but was not given (--secret id=%s,src=FILE)", sm.ID, sm.ID)
		}
		return executor.Mount{}, nil, nil
	}
	dir, err := os.MkdirTemp(o.w.TempDir, "secret-")
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("secret %q: %w", sm.ID, err)
	}
	release := func() {
		_ = mount.Unmount(dir)
		_ = os.RemoveAll(dir)
	}
	size := (len(data)/4096 + 2) * 4096
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size="+strconv.Itoa(size)); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("secret %q: mount tmpfs on %s: %w", sm.ID, dir, err)
	}
	mode := os.FileMode(sm.Mode & 0o7777)
	if sm.Mode == 0 {
		mode = 0o400
	}
	file := filepath.Join(dir, "secret")
	if err := writeOwned(file, data, mode, sm.UID, sm.GID); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("secret %q: %w", sm.ID, err)
	}
	return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: file, Options: []string{"bind", "ro"}}}}, release, nil
}

// secretEnv returns the NAME=value entries of the step's env secrets. A
// secret that was not given leaves its variable unset, unless it is
// required.
func (o *execOp) secretEnv() ([]string, error) {
	var env []string
	for name, id := range o.op.SecretEnv {
		data, ok := o.w.Secrets[id]
		if !ok {
			if slices.Contains(o.op.SecretEnvRequired, name) {
				return nil, fmt.Errorf("secret %q is required but was not given (--secret id=%s,env=VAR)", id, id)
			}
			continue
		}
		if slices.Contains(data, 0) {
			return nil, fmt.Errorf("secret %q for env %s contains a NUL byte", id, name)
		}
		env = append(env, name+"="+string(data))
	}
	slices.Sort(env)
	return env, nil
}

// writeOwned writes data to a new file with exactly mode, uid and gid.
func writeOwned(p string, data []byte, mode os.FileMode, uid, gid int) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// sshMount exposes an SSH agent at the mount's target. The step gets a
// socket of its own (with the mount's mode and owner), and each connection
// to it is forwarded to the agent's socket given for the id; the release
// closes the socket and waits for the forwarding to end.
func (o *execOp) sshMount(m llb.Mount) (executor.Mount, func(), error) {
	sm := m.SSH
	if sm == nil {
		return executor.Mount{}, nil, fmt.Errorf("ssh mount %s: no ssh id", m.Dest)
	}
	agent, ok := o.w.SSH[sm.ID]
	if !ok || agent == "" {
		if sm.Required {
			return executor.Mount{}, nil, fmt.Errorf("ssh agent %q is required but was not given (--ssh %s=SOCKET)", sm.ID, sm.ID)
		}
		return executor.Mount{}, nil, nil
	}
	dir, err := os.MkdirTemp(o.w.TempDir, "ssh-")
	if err != nil {
		return executor.Mount{}, nil, fmt.Errorf("ssh agent %q: %w", sm.ID, err)
	}
	sock := filepath.Join(dir, "agent.sock")
	p, err := newAgentProxy(sock, agent)
	if err != nil {
		os.RemoveAll(dir)
		return executor.Mount{}, nil, fmt.Errorf("ssh agent %q: %w", sm.ID, err)
	}
	release := func() {
		p.close()
		_ = os.RemoveAll(dir)
	}
	mode := os.FileMode(sm.Mode & 0o777)
	if sm.Mode == 0 {
		mode = 0o600
	}
	if err := os.Lchown(sock, sm.UID, sm.GID); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("ssh agent %q: %w", sm.ID, err)
	}
	if err := os.Chmod(sock, mode); err != nil {
		release()
		return executor.Mount{}, nil, fmt.Errorf("ssh agent %q: %w", sm.ID, err)
	}
	return executor.Mount{Dest: m.Dest, Mounts: []mount.Mount{{Type: "bind", Source: sock, Options: []string{"bind"}}}}, release, nil
}

// agentProxy forwards connections on a unix socket to another one.
type agentProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func newAgentProxy(sock, target string) (*agentProxy, error) {
	fi, err := os.Stat(target)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("%s is not a socket", target)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	p := &agentProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *agentProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track records c for close; false once the proxy is closed.
func (p *agentProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *agentProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("unix", p.target)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if uc, ok := c.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
}

// close stops accepting, ends every forwarded connection and waits.
func (p *agentProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
