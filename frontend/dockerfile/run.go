package dockerfile

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/strata-build/strata/llb"
)

// dispatchRun turns RUN into an ExecOp over the stage root.
func (c *converter) dispatchRun(s *stage, x *instructions.RunCommand, cmd command) error {
	v := &llb.Vertex{Inputs: []*llb.Vertex{s.root}}
	exec := &llb.ExecOp{
		Env:      s.env.sorted(),
		ProxyEnv: c.proxyEnv(s),
		Cwd:      s.dir,
		User:     s.user,
		Mounts:   []llb.Mount{{Type: llb.MountBind, Dest: "/", Input: 0}},
	}
	args, suffix, err := c.runArgs(s, x, v, exec)
	if err != nil {
		return err
	}
	exec.Args = args
	if err := c.runMounts(s, x, cmd, v, exec); err != nil {
		return err
	}
	switch n := instructions.GetNetwork(x); n {
	case "", instructions.NetworkDefault:
		exec.Network = c.opts.Network
	case instructions.NetworkNone:
		exec.Network = llb.NetNone
	case instructions.NetworkHost:
		exec.Network = llb.NetHost
	default:
		return fmt.Errorf("unsupported network mode %q", n)
	}
	if len(c.opts.ExtraHosts) > 0 {
		exec.ExtraHosts = append(exec.ExtraHosts, c.opts.ExtraHosts...)
	}
	switch sec := instructions.GetSecurity(x); sec {
	case "", instructions.SecuritySandbox:
	case instructions.SecurityInsecure:
		exec.Security = llb.SecurityInsecure
	default:
		return fmt.Errorf("unsupported security mode %q", sec)
	}
	v.Op = exec
	v.Meta = c.meta(s, s.prefix(c.displayName(s, cmd)+suffix, cmd.onBuild), x.Location(), cmd.step)
	v.Meta.BuildArgs = c.argNames(s)
	s.root = v
	c.commitHistory(&s.img, "RUN "+runCommandString(args, s.buildArgs, s.env), true, true)
	return nil
}

// argNames lists the env names of a RUN that come from build arguments: the
// stage's ARGs and the proxy args given to the build.
func (c *converter) argNames(s *stage) []string {
	var out []string
	for _, a := range s.buildArgs {
		out = append(out, a.Key)
	}
	for _, k := range proxyArgs {
		if _, ok := c.opts.BuildArgs[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// proxyEnv is the proxy build args given to the build that the stage's env
// does not set itself, sorted.
func (c *converter) proxyEnv(s *stage) []string {
	var out []string
	for _, k := range proxyArgs {
		if v, ok := c.opts.BuildArgs[k]; ok {
			if _, set := s.env.Get(k); !set {
				out = append(out, k+"="+v)
			}
		}
	}
	sort.Strings(out)
	return out
}

// runArgs builds the command line of a RUN, heredocs included. A single
// heredoc starting with "#!" becomes a file mounted at /dev/pipes and run.
func (c *converter) runArgs(s *stage, x *instructions.RunCommand, v *llb.Vertex, exec *llb.ExecOp) ([]string, string, error) {
	args := x.CmdLine
	suffix := ""
	if len(x.Files) > 0 {
		if len(args) != 1 || !x.PrependShell {
			return nil, "", fmt.Errorf("parsing produced an invalid run command: %v", args)
		}
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := x.Files[0].Data
			if x.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				f := x.Files[0].Name
				doc := &llb.Vertex{
					Op:   &llb.FileOp{Base: -1, Actions: []llb.FileAction{{Mkfile: &llb.MkfileAction{Path: "/" + f, Mode: 0o755, Data: []byte(data)}}}},
					Meta: llb.Meta{Name: "[internal] preparing inline document"},
				}
				v.Inputs = append(v.Inputs, doc)
				exec.Mounts = append(exec.Mounts, llb.Mount{Type: llb.MountBind, Dest: "/dev/pipes", Input: len(v.Inputs) - 1, Readonly: true})
				args = []string{path.Join("/dev/pipes", f)}
			} else {
				args = []string{data}
			}
			suffix = fmt.Sprintf(" (%s)", summarizeHeredoc(x.Files[0].Data))
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range x.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			args = []string{b.String()}
		}
	}
	if x.PrependShell {
		args = withShell(s.img, args)
	}
	return args, suffix, nil
}

func summarizeHeredoc(doc string) string {
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(doc), "\r\n", "\n"), "\n")
	if len(lines) > 1 {
		return lines[0] + "..."
	}
	return lines[0]
}

// runCommandString is the history text of a RUN: "|2 A=1 B=2 /bin/sh -c make"
// when build args are declared.
func runCommandString(args []string, buildArgs []instructions.KeyValuePairOptional, env *envList) string {
	var kvs []string
	idx := map[string]int{}
	for _, a := range buildArgs {
		v, ok := env.Get(a.Key)
		if !ok {
			v = a.ValueString()
		}
		if i, ok := idx[a.Key]; ok {
			kvs[i] = a.Key + "=" + v
			continue
		}
		idx[a.Key] = len(kvs)
		kvs = append(kvs, a.Key+"="+v)
	}
	if len(kvs) > 0 {
		kvs = append([]string{fmt.Sprintf("|%d", len(kvs))}, kvs...)
	}
	return strings.Join(append(kvs, args...), " ")
}

// addInput returns the index of in among v's inputs, appending it once;
// scratch (nil) is -1.
func addInput(v *llb.Vertex, in *llb.Vertex) int {
	if in == nil {
		return -1
	}
	for i, x := range v.Inputs {
		if x == in {
			return i
		}
	}
	v.Inputs = append(v.Inputs, in)
	return len(v.Inputs) - 1
}

// runMounts maps RUN --mount flags to ExecOp mounts.
func (c *converter) runMounts(s *stage, x *instructions.RunCommand, cmd command, v *llb.Vertex, exec *llb.ExecOp) error {
	sshN := 0
	for i, m := range instructions.GetMounts(x) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", s.dir, target)
		}
		switch m.Type {
		case instructions.MountTypeSecret:
			if err := secretMount(m, target, exec); err != nil {
				return err
			}
			continue
		case instructions.MountTypeSSH:
			exec.Mounts = append(exec.Mounts, sshMount(m, target, sshN))
			sshN++
			continue
		}
		if target == "" || path.Clean(target) == "/" {
			return fmt.Errorf("invalid mount target %q", target)
		}
		mnt := llb.Mount{Type: llb.MountType(m.Type), Dest: path.Clean(target), Input: -1, Readonly: m.ReadOnly}
		if src := path.Join("/", m.Source); src != "/" {
			mnt.Selector = src
		}
		var in *llb.Vertex
		switch {
		case m.Type == instructions.MountTypeTmpfs:
			mnt.Tmpfs = &llb.TmpfsMount{Size: m.SizeLimit}
			mnt.Selector = ""
		case m.From != "":
			src := cmd.sources[i]
			if !src.dispatched {
				return fmt.Errorf("cannot mount from stage %q to %q, stage needs to be defined before current command", m.From, m.Target)
			}
			in = src.root
		case m.Type == instructions.MountTypeBind:
			in = c.contextVertex()
		}
		if m.Type == instructions.MountTypeCache {
			mnt.Cache = cacheMount(m)
		}
		mnt.Input = addInput(v, in)
		exec.Mounts = append(exec.Mounts, mnt)
	}
	return nil
}

func cacheMount(m *instructions.Mount) *llb.CacheMount {
	cm := &llb.CacheMount{ID: m.CacheID, Sharing: llb.SharingShared}
	if cm.ID == "" {
		cm.ID = path.Clean(m.Target)
	}
	switch m.CacheSharing {
	case instructions.MountSharingPrivate:
		cm.Sharing = llb.SharingPrivate
	case instructions.MountSharingLocked:
		cm.Sharing = llb.SharingLocked
	}
	if m.Mode != nil {
		cm.Mode = uint32(*m.Mode)
	}
	if m.UID != nil {
		cm.UID = int(*m.UID)
	}
	if m.GID != nil {
		cm.GID = int(*m.GID)
	}
	return cm
}

// secretMount exposes a secret as a file (default /run/secrets/<id>), as an
// env variable (env=), or both.
func secretMount(m *instructions.Mount, target string, exec *llb.ExecOp) error {
	id := m.CacheID
	if m.Source != "" {
		id = m.Source
	}
	if id == "" {
		if target == "" {
			return fmt.Errorf("one of source, target required")
		}
		id = path.Base(target)
	}
	if m.Env != nil {
		name := *m.Env
		if name == "" {
			name = id
		}
		if exec.SecretEnv == nil {
			exec.SecretEnv = map[string]string{}
		}
		exec.SecretEnv[name] = id
		if m.Required {
			exec.SecretEnvRequired = append(exec.SecretEnvRequired, name)
		}
		if target == "" {
			return nil
		}
	}
	if target == "" {
		target = "/run/secrets/" + path.Base(id)
	}
	sm := &llb.SecretMount{ID: id, Required: m.Required, Mode: 0o400}
	if m.Mode != nil {
		sm.Mode = uint32(*m.Mode)
	}
	if m.UID != nil {
		sm.UID = int(*m.UID)
	}
	if m.GID != nil {
		sm.GID = int(*m.GID)
	}
	exec.Mounts = append(exec.Mounts, llb.Mount{Type: llb.MountSecret, Dest: target, Input: -1, Readonly: true, Secret: sm})
	return nil
}

// sshMount exposes an SSH agent socket (default /run/buildkit/ssh_agent.N).
func sshMount(m *instructions.Mount, target string, n int) llb.Mount {
	id := m.CacheID
	if id == "" {
		id = "default"
	}
	if target == "" {
		target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", n)
	}
	sm := &llb.SSHMount{ID: id, Required: m.Required, Mode: 0o600}
	if m.Mode != nil {
		sm.Mode = uint32(*m.Mode)
	}
	if m.UID != nil {
		sm.UID = int(*m.UID)
	}
	if m.GID != nil {
		sm.GID = int(*m.GID)
	}
	return llb.Mount{Type: llb.MountSSH, Dest: target, Input: -1, Readonly: true, SSH: sm}
}
