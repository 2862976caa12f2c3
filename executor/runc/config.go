//go:build linux

package runc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/mount"
)

// config translates spec into the bundle's runtime-spec, creating in the
// root the working directory and the mount points runc would otherwise
// leave behind. netns, when set, is the network namespace to join.
func (b *bundle) config(spec executor.Spec, netns string) (*specs.Spec, error) {
	proc, err := b.process(spec)
	if err != nil {
		return nil, err
	}
	mounts, err := b.mounts(spec)
	if err != nil {
		return nil, err
	}
	cfg := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Process:  proc,
		Hostname: spec.Hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: namespaces(spec.Network, netns),
			Resources: &specs.LinuxResources{
				// Deny every device but the runtime's defaults.
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
	if spec.Insecure {
		return cfg, nil
	}
	cfg.Linux.MaskedPaths = executor.MaskedPaths()
	cfg.Linux.ReadonlyPaths = executor.ReadonlyPaths()
	if cfg.Linux.Seccomp, err = seccomp.GetDefaultProfile(cfg); err != nil {
		return nil, fmt.Errorf("load default seccomp profile: %w", err)
	}
	return cfg, nil
}

func namespaces(mode executor.NetworkMode, netns string) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.IPCNamespace}}
	if mode != executor.NetworkHost {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	}
	return ns
}

// process resolves the user in the root's /etc/passwd and /etc/group and
// creates the working directory.
func (b *bundle) process(spec executor.Spec) (*specs.Process, error) {
	passwd, err := securejoin.SecureJoin(b.rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(b.rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u, err := user.GetExecUserPath(spec.User, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("resolve user %q: %w", spec.User, err)
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	p, err := securejoin.SecureJoin(b.rootfs, cwd)
	if err != nil {
		return nil, fmt.Errorf("resolve working directory %s: %w", cwd, err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, fmt.Errorf("create working directory: %w", err)
	}
	gids := make([]uint32, len(u.Sgids))
	for i, g := range u.Sgids {
		gids[i] = uint32(g)
	}
	caps := executor.DefaultCapabilities()
	if spec.Insecure {
		if caps, err = ownCapabilities(); err != nil {
			return nil, err
		}
	}
	return &specs.Process{
		Terminal: spec.Tty,
		Args:     spec.Args,
		Env:      executor.ProcessEnv(spec.Env, u.Home),
		Cwd:      cwd,
		User:     specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: gids},
		Capabilities: &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
		// As Docker: setuid programs such as sudo keep working.
		NoNewPrivileges: false,
	}, nil
}

// ownCapabilities lists the capabilities in the caller's bounding set: all
// an insecure run can get.
func ownCapabilities() ([]string, error) {
	caps, err := capability.NewPid2(0)
	if err == nil {
		err = caps.Load()
	}
	if err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	var names []string
	for _, c := range capability.ListKnown() {
		if caps.Get(capability.BOUNDING, c) {
			names = append(names, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return names, nil
}

// mounts returns the runtime-spec mounts of spec: the system filesystems,
// the generated /etc files and spec's Mounts, shallowest first.
func (b *bundle) mounts(spec executor.Spec) ([]specs.Mount, error) {
	sys := []string{"nosuid", "noexec", "nodev", "ro"}
	if spec.Insecure {
		sys = sys[:3]
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sys},
	}
	for _, d := range []string{"/proc", "/dev", "/sys"} {
		if _, err := b.target(d, false); err != nil {
			return nil, err
		}
	}
	etc, err := b.etcFiles(spec)
	if err != nil {
		return nil, err
	}
	ms = append(ms, etc...)
	user := slices.Clone(spec.Mounts)
	slices.SortStableFunc(user, func(a, b executor.Mount) int { return depth(a.Dest) - depth(b.Dest) })
	for _, m := range user {
		um, err := b.userMount(m)
		if err != nil {
			return nil, err
		}
		ms = append(ms, um...)
	}
	return ms, nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// etcFiles writes the run's hosts, resolv.conf and hostname and binds them
// over the root's, where they exist or can be created.
func (b *bundle) etcFiles(spec executor.Spec) ([]specs.Mount, error) {
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	files := []struct {
		dest string
		data []byte
	}{
		{"/etc/hosts", executor.HostsFile(spec.Hostname, spec.ExtraHosts)},
		{"/etc/resolv.conf", executor.ResolvConf(hostResolv, spec.Network == executor.NetworkHost)},
		{"/etc/hostname", []byte(spec.Hostname + "\n")},
	}
	var ms []specs.Mount
	for _, f := range files {
		src := filepath.Join(b.dir, filepath.Base(f.dest))
		if err := os.WriteFile(src, f.data, 0o644); err != nil {
			return nil, err
		}
		p, err := b.target(f.dest, true)
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		ms = append(ms, specs.Mount{Destination: f.dest, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
	return ms, nil
}

// userMount translates one of the Spec's Mounts.
func (b *bundle) userMount(m executor.Mount) ([]specs.Mount, error) {
	if !filepath.IsAbs(m.Dest) {
		return nil, fmt.Errorf("mount on %q: not an absolute path", m.Dest)
	}
	file := false
	if len(m.Mounts) > 0 && m.Mounts[0].Type == "bind" {
		if st, err := os.Stat(m.Mounts[0].Source); err == nil && !st.IsDir() {
			file = true
		}
	}
	if _, err := b.target(m.Dest, file); err != nil {
		return nil, err
	}
	var out []specs.Mount
	for _, sm := range m.Mounts {
		out = append(out, specMount(m.Dest, sm))
	}
	return out, nil
}

// specMount translates a snapshot mount; relative paths in its options
// become absolute, as runc mounts from its own working directory.
func specMount(dest string, m mount.Mount) specs.Mount {
	opts := make([]string, 0, len(m.Options)+1)
	for _, o := range m.Options {
		if k, v, ok := strings.Cut(o, "="); ok && m.Dir != "" && (k == "lowerdir" || k == "upperdir" || k == "workdir") {
			parts := strings.Split(v, ":")
			for i, p := range parts {
				parts[i] = m.Path(p)
			}
			o = k + "=" + strings.Join(parts, ":")
		}
		opts = append(opts, o)
	}
	if m.Type == "bind" {
		if !slices.Contains(opts, "rbind") {
			opts = append(opts, "rbind")
		}
		return specs.Mount{Destination: dest, Type: "bind", Source: m.Source, Options: opts}
	}
	return specs.Mount{Destination: dest, Type: m.Type, Source: m.Source, Options: opts}
}

// target resolves dest inside the root, creating what is missing (a file
// when file is true, else a directory) and recording it as a stub.
func (b *bundle) target(dest string, file bool) (string, error) {
	if b.stubs == nil {
		b.stubs = executor.NewStubs(b.rootfs)
	}
	return b.stubs.Target(dest, file)
}

// removeStubs takes away the mount points the run created.
func (b *bundle) removeStubs() {
	if b.stubs != nil {
		b.stubs.Remove(b.rootfs)
	}
}
