package executortest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-build/strata/executor"
	"github.com/strata-build/strata/executor/network"
	"github.com/strata-build/strata/mount"
)

// NewRoot returns a fresh writable root filesystem as mounts.
type NewRoot func(t testing.TB) []mount.Mount

// DockerCapEff is the hex capability mask of Docker's default set.
const DockerCapEff = "00000000a80425fb"

// guard bounds how long a run that must end promptly may take before the
// suite reports it hung; it is a failure bound, not a wait.
const guard = 30 * time.Second

// suite runs commands through one executor.
type suite struct {
	e       executor.Executor
	newRoot NewRoot
	opts    Options
}

// Options tells the suite more about the executor under test.
type Options struct {
	// StateDir is the executor's state directory: no mount may remain
	// under it after a run.
	StateDir string
	// CommandIsPID1 says the command runs as its pid namespace's init (an
	// OCI runtime without an init process, as `docker run` without
	// --init): the kernel then ignores the signals it sends itself.
	CommandIsPID1 bool
}

// Run runs the conformance suite against e.
func Run(t *testing.T, e executor.Executor, newRoot NewRoot) {
	RunWith(t, e, newRoot, Options{})
}

// RunWith runs the conformance suite against e, described by opts.
func RunWith(t *testing.T, e executor.Executor, newRoot NewRoot, opts Options) {
	RequireRoot(t)
	s := &suite{e: e, newRoot: newRoot, opts: opts}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ExitCode", s.testExitCode},
		{"ExecNotFound", s.testExecNotFound},
		{"Streams", s.testStreams},
		{"Env", s.testEnv},
		{"Cwd", s.testCwd},
		{"User", s.testUser},
		{"Capabilities", s.testCapabilities},
		{"Seccomp", s.testSeccomp},
		{"Insecure", s.testInsecure},
		{"ReadOnlySys", s.testReadOnlySys},
		{"MaskedProc", s.testMaskedProc},
		{"PidNamespace", s.testPidNamespace},
		{"Network", s.testNetwork},
		{"HostNetwork", s.testHostNetwork},
		{"NetworkReach", s.testNetworkReach},
		{"NetworkConcurrent", s.testNetworkConcurrent},
		{"CancelNetwork", s.testCancelNetwork},
		{"StopSignal", s.testStopSignal},
		{"Hostname", s.testHostname},
		{"EtcHosts", s.testEtcHosts},
		{"Mounts", s.testMounts},
		{"WritesLandInRoot", s.testWritesLandInRoot},
		{"NoMountLeak", s.testNoMountLeak},
		{"Cancel", s.testCancel},
		{"BackgroundProcess", s.testBackgroundProcess},
		{"Escapes", s.testEscapes},
		{"Tty", s.testTty},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

// run runs spec (on a fresh root unless it has one) and returns its
// output streams.
func (s *suite) run(t *testing.T, spec executor.Spec, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	if spec.Root == nil {
		spec.Root = s.newRoot(t)
	}
	var out, errb bytes.Buffer
	sio := executor.IO{Stdout: &out, Stderr: &errb}
	if stdin != "" {
		sio.Stdin = strings.NewReader(stdin)
	}
	err = s.e.Run(context.Background(), spec, sio)
	return out.String(), errb.String(), err
}

// sh runs a shell script and fails t unless it exits 0.
func (s *suite) sh(t *testing.T, spec executor.Spec, script string) string {
	t.Helper()
	spec.Args = []string{"/bin/sh", "-c", script}
	out, errOut, err := s.run(t, spec, "")
	if err != nil {
		t.Fatalf("%q: %v (stderr %q)", script, err, errOut)
	}
	return out
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *executor.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("want an exit error, got %v", err)
	}
	return ee.Code
}

func (s *suite) testExitCode(t *testing.T) {
	for _, code := range []int{0, 1, 3, 255} {
		_, _, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", "exit " + itoa(code)}}, "")
		if got := exitCode(t, err); got != code {
			t.Errorf("exit %d: got code %d", code, got)
		}
		if code != 0 && err.Error() != "exit code: "+itoa(code) {
			t.Errorf("exit %d: message %q", code, err.Error())
		}
	}
	want := 137
	if s.opts.CommandIsPID1 {
		want = 0 // the kernel shields a namespace's init from its own signals
	}
	_, _, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", "kill -9 $$; exit 0"}}, "")
	if got := exitCode(t, err); got != want {
		t.Errorf("killed by SIGKILL: got code %d, want %d", got, want)
	}
}

func (s *suite) testExecNotFound(t *testing.T) {
	_, _, err := s.run(t, executor.Spec{Args: []string{"no-such-command"}}, "")
	var ee *executor.ExitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "no-such-command") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("got %v, want an error naming the missing executable", err)
	}
}

func (s *suite) testStreams(t *testing.T) {
	out, errOut, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", "cat; echo to-err >&2"}}, "from stdin\n")
	if err != nil {
		t.Fatal(err)
	}
	if out != "from stdin\n" || errOut != "to-err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
}

func (s *suite) testEnv(t *testing.T) {
	out := s.sh(t, executor.Spec{Env: []string{"FOO=bar baz", "EMPTY="}}, `echo "$FOO|$EMPTY|$PATH|$HOME"`)
	if want := "bar baz||" + executor.DefaultPath + "|/root\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	out = s.sh(t, executor.Spec{Env: []string{"PATH=/bin", "HOME=/x"}}, `echo "$PATH|$HOME"`)
	if out != "/bin|/x\n" {
		t.Fatalf("got %q", out)
	}
}

func (s *suite) testCwd(t *testing.T) {
	if out := s.sh(t, executor.Spec{Cwd: "/work/dir"}, "pwd"); out != "/work/dir\n" {
		t.Fatalf("created cwd: got %q", out)
	}
	if out := s.sh(t, executor.Spec{}, "pwd"); out != "/\n" {
		t.Fatalf("default cwd: got %q", out)
	}
}

func (s *suite) testUser(t *testing.T) {
	tests := []struct{ user, want string }{
		// busybox id lists the supplementary groups (getgroups) only.
		{"", "uid=0(root) gid=0(root)\nGroups:\t \n"},
		{"app", "uid=1000(app) gid=1000(app) groups=2000(extra)\nGroups:\t2000 \n"},
		{"1000", "uid=1000(app) gid=1000(app) groups=2000(extra)\nGroups:\t2000 \n"},
		{"app:extra", "uid=1000(app) gid=2000(extra)\nGroups:\t \n"},
		{"1234:5678", "uid=1234 gid=5678\nGroups:\t \n"},
	}
	for _, tt := range tests {
		if out := s.sh(t, executor.Spec{User: tt.user}, "id; grep ^Groups: /proc/self/status"); out != tt.want {
			t.Errorf("user %q: got %q, want %q", tt.user, out, tt.want)
		}
	}
	if out := s.sh(t, executor.Spec{User: "app"}, `echo $HOME`); out != "/home/app\n" {
		t.Errorf("HOME of app: got %q", out)
	}
	_, _, err := s.run(t, executor.Spec{User: "nobody-here", Args: []string{"true"}}, "")
	if err == nil || !strings.Contains(err.Error(), "nobody-here") {
		t.Errorf("unknown user: got %v", err)
	}
}

// statusField returns a field of /proc/self/status inside the sandbox.
func (s *suite) statusField(t *testing.T, spec executor.Spec, field string) string {
	t.Helper()
	out := s.sh(t, spec, "grep '^"+field+":' /proc/self/status")
	_, v, _ := strings.Cut(strings.TrimSpace(out), ":")
	return strings.TrimSpace(v)
}

func (s *suite) testCapabilities(t *testing.T) {
	for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got := s.statusField(t, executor.Spec{}, f); got != DockerCapEff {
			t.Errorf("root %s: got %s, want %s", f, got, DockerCapEff)
		}
	}
	if got := s.statusField(t, executor.Spec{}, "CapAmb"); got != "0000000000000000" {
		t.Errorf("root CapAmb: got %s", got)
	}
	if got := s.statusField(t, executor.Spec{User: "app"}, "CapEff"); got != "0000000000000000" {
		t.Errorf("app CapEff: got %s", got)
	}
	if got := s.statusField(t, executor.Spec{User: "app"}, "CapBnd"); got != DockerCapEff {
		t.Errorf("app CapBnd: got %s", got)
	}
}

func (s *suite) testSeccomp(t *testing.T) {
	if got := s.statusField(t, executor.Spec{}, "Seccomp"); got != "2" {
		t.Errorf("Seccomp: got %s, want 2 (filter)", got)
	}
	if got := s.statusField(t, executor.Spec{}, "NoNewPrivs"); got != "0" {
		t.Errorf("NoNewPrivs: got %s, want 0", got)
	}
	// unshare is refused without CAP_SYS_ADMIN by the profile.
	out, _, err := s.run(t, executor.Spec{Args: []string{"unshare", "-n", "true"}}, "")
	if err == nil {
		t.Errorf("unshare -n succeeded: %q", out)
	}
}

func (s *suite) testInsecure(t *testing.T) {
	spec := executor.Spec{Insecure: true}
	if got := s.statusField(t, spec, "Seccomp"); got != "0" {
		t.Errorf("Seccomp: got %s, want 0", got)
	}
	if got := s.statusField(t, spec, "CapEff"); got == DockerCapEff || got == "0000000000000000" {
		t.Errorf("CapEff: got %s, want all capabilities", got)
	}
	s.sh(t, spec, "mkdir /tmp/m && mount -t tmpfs none /tmp/m && grep ' /sys ' /proc/mounts | grep -q ' rw,'")
}

func (s *suite) testReadOnlySys(t *testing.T) {
	out := s.sh(t, executor.Spec{}, "grep ' /sys ' /proc/mounts")
	if !strings.Contains(out, " ro,") {
		t.Errorf("/sys mount: %q", out)
	}
	if _, _, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", "echo 1 > /sys/kernel/uevent_helper || touch /sys/x"}}, ""); err == nil {
		t.Error("wrote to /sys")
	}
}

func (s *suite) testMaskedProc(t *testing.T) {
	// Which of these exist depends on the kernel; each one that does must
	// read empty.
	out := s.sh(t, executor.Spec{}, `for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/acpi /sys/firmware; do
		if [ -d $f ]; then echo "$f $(ls -A $f | wc -l)"; elif [ -e $f ]; then echo "$f $(wc -c < $f)"; fi
	done`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Errorf("too few masked paths exist: %q", out)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, " 0") {
			t.Errorf("masked path not empty: %q", l)
		}
	}
	for _, script := range []string{"echo h > /proc/sysrq-trigger", "echo 1 > /proc/sys/vm/drop_caches", "echo x > /proc/sys/kernel/hostname"} {
		if _, _, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", script}}, ""); err == nil {
			t.Errorf("%q succeeded", script)
		}
	}
}

func (s *suite) testPidNamespace(t *testing.T) {
	out := s.sh(t, executor.Spec{}, "ps -o pid | tail -n +2")
	pids := strings.Fields(out)
	if len(pids) == 0 || len(pids) > 4 || pids[0] != "1" {
		t.Fatalf("ps sees %q, want only the sandbox's few processes starting at 1", pids)
	}
	for _, p := range pids {
		if len(p) > 2 {
			t.Errorf("ps sees pid %s from outside the sandbox", p)
		}
	}
}

// interfaces lists the network interfaces in /proc/net/dev text.
func interfaces(procNetDev string) []string {
	var names []string
	for _, line := range strings.Split(procNetDev, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return names
}

func (s *suite) testNetwork(t *testing.T) {
	want := map[executor.NetworkMode]string{executor.NetworkDefault: "eth0,lo", executor.NetworkNone: "lo"}
	for _, mode := range []executor.NetworkMode{executor.NetworkDefault, executor.NetworkNone} {
		out := s.sh(t, executor.Spec{Network: mode}, "cat /proc/net/dev")
		got := interfaces(out)
		slices.Sort(got)
		if strings.Join(got, ",") != want[mode] {
			t.Errorf("network %s: interfaces %q, want %s", mode, got, want[mode])
		}
		if out := s.sh(t, executor.Spec{Network: mode}, "cat /sys/class/net/lo/flags"); out != "0x9\n" {
			t.Errorf("network %s: lo flags %q, want 0x9 (up, loopback)", mode, out)
		}
	}
}

func (s *suite) testHostNetwork(t *testing.T) {
	host, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Skip(err)
	}
	out := s.sh(t, executor.Spec{Network: executor.NetworkHost}, "cat /proc/net/dev")
	// Links of concurrent runs come and go: only the others must match.
	own := func(name string) bool { return strings.HasPrefix(name, network.Prefix) }
	hostIfs, sandboxIfs := slices.DeleteFunc(interfaces(string(host)), own), slices.DeleteFunc(interfaces(out), own)
	if got, want := strings.Join(sandboxIfs, ","), strings.Join(hostIfs, ","); got != want {
		t.Errorf("host network: interfaces %q, want %q", got, want)
	}
}

func (s *suite) testHostname(t *testing.T) {
	if out := s.sh(t, executor.Spec{Hostname: "buildbox"}, "hostname; cat /etc/hostname"); out != "buildbox\nbuildbox\n" {
		t.Errorf("got %q", out)
	}
	out := strings.TrimSpace(s.sh(t, executor.Spec{}, "hostname"))
	if len(out) < 8 || strings.Trim(out, "0123456789abcdef") != "" {
		t.Errorf("default hostname %q, want a short random hex id", out)
	}
}

func (s *suite) testEtcHosts(t *testing.T) {
	spec := executor.Spec{Hostname: "hh", ExtraHosts: []executor.HostIP{{Host: "registry.test", IP: "10.1.2.3"}}}
	out := s.sh(t, spec, "cat /etc/hosts")
	for _, want := range []string{"127.0.0.1\tlocalhost hh\n", "10.1.2.3\tregistry.test\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("/etc/hosts %q lacks %q", out, want)
		}
	}
	out = s.sh(t, executor.Spec{}, "cat /etc/resolv.conf")
	if !strings.Contains(out, "nameserver ") || strings.Contains(out, "nameserver 127.") {
		t.Errorf("/etc/resolv.conf: %q", out)
	}
}

func (s *suite) testMounts(t *testing.T) {
	data := t.TempDir()
	must(t, os.WriteFile(filepath.Join(data, "f"), []byte("host data\n"), 0o644))
	spec := executor.Spec{Mounts: []executor.Mount{
		{Dest: "/data/ro", Mounts: []mount.Mount{{Type: "bind", Source: data, Options: []string{"ro"}}}},
		{Dest: "/scratch", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}}},
		{Dest: "/data", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
	}}
	out := s.sh(t, spec, "cat /data/ro/f; echo x > /scratch/y && cat /scratch/y; touch /data/ro/g 2>/dev/null || echo ro")
	if out != "host data\nx\nro\n" {
		t.Errorf("got %q", out)
	}
	if _, err := os.Stat(filepath.Join(data, "g")); err == nil {
		t.Error("write through a read-only bind reached the host")
	}
}

func (s *suite) testWritesLandInRoot(t *testing.T) {
	root := s.newRoot(t)
	s.sh(t, executor.Spec{Root: root}, "echo hello > /newfile && mkdir -p /a/b && chown 1000:1000 /a/b && rm /etc/group")
	err := mount.WithTemp(t.TempDir(), root, func(dir string) error {
		data, err := os.ReadFile(filepath.Join(dir, "newfile"))
		if err != nil || string(data) != "hello\n" {
			t.Errorf("newfile: %q, %v", data, err)
		}
		st, err := os.Stat(filepath.Join(dir, "a/b"))
		if err != nil || !st.IsDir() {
			t.Errorf("a/b: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "etc/group")); !os.IsNotExist(err) {
			t.Errorf("etc/group still there: %v", err)
		}
		for _, stub := range []string{"etc/hosts", "etc/resolv.conf", "etc/hostname", "work"} {
			if _, err := os.Lstat(filepath.Join(dir, stub)); !os.IsNotExist(err) {
				t.Errorf("mount point %s left in the root: %v", stub, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// MountsUnder returns the lines of the caller's /proc/self/mountinfo whose
// mount point, source or a path in whose options is dir or under it. dir
// must be absolute: other programs' mounts elsewhere never match.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	if !filepath.IsAbs(dir) {
		t.Fatalf("mounts under %q: not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	data, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if slices.ContainsFunc(mountPaths(l), func(p string) bool { return within(p, dir) }) {
			out = append(out, l)
		}
	}
	return out
}

// mountPaths returns the paths a mountinfo line names: its mount point,
// its source, and every path in its super options (lowerdir=a:b, ...).
func mountPaths(line string) []string {
	pre, post, ok := strings.Cut(line, " - ")
	f, g := strings.Fields(pre), strings.Fields(post)
	if !ok || len(f) < 5 || len(g) < 3 {
		return nil
	}
	paths := []string{unescape(f[4]), unescape(g[1])}
	for _, o := range strings.Split(g[2], ",") {
		if _, v, ok := strings.Cut(o, "="); ok {
			for _, p := range strings.Split(v, ":") {
				paths = append(paths, unescape(p))
			}
		}
	}
	return paths
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// within reports whether p is dir or a path under it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func (s *suite) testNoMountLeak(t *testing.T) {
	root := s.newRoot(t)
	src := t.TempDir()
	spec := executor.Spec{Root: root, Mounts: []executor.Mount{
		{Dest: "/mnt/src", Mounts: []mount.Mount{{Type: "bind", Source: src}}},
		{Dest: "/mnt/tmp", Mounts: []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}},
	}}
	s.sh(t, spec, "true")
	_, _, _ = s.run(t, executor.Spec{Root: root, Args: []string{"/bin/sh", "-c", "exit 7"}}, "")
	// Every path the runs mounted from, and the executor's state dir, must
	// be absent from the host's mount table. Only absolute paths count:
	// sources such as "overlay" or "tmpfs" name no place.
	paths := []string{src}
	if s.opts.StateDir != "" {
		paths = append(paths, s.opts.StateDir)
	}
	for _, m := range root {
		paths = append(paths, m.Source)
		for _, o := range m.Options {
			if _, v, ok := strings.Cut(o, "="); ok {
				for _, p := range strings.Split(v, ":") {
					paths = append(paths, m.Path(p))
				}
			}
		}
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			continue
		}
		if leaked := MountsUnder(t, p); len(leaked) > 0 {
			t.Errorf("mounts left on the host under %s: %q", p, leaked)
		}
	}
}

// firstWrite signals once something is written.
type firstWrite struct {
	ch chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	select {
	case <-w.ch:
	default:
		close(w.ch)
	}
	return len(p), nil
}

func (s *suite) testCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := &firstWrite{ch: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- s.e.Run(ctx, executor.Spec{Root: s.newRoot(t), Args: []string{"/bin/sh", "-c", "sleep 1000 & echo started; sleep 1000"}},
			executor.IO{Stdout: started, Stderr: io.Discard})
	}()
	select {
	case <-started.ch:
	case err := <-done:
		t.Fatalf("run ended before cancel: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(guard):
		t.Fatal("cancelled run did not end")
	}
}

func (s *suite) testBackgroundProcess(t *testing.T) {
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- s.e.Run(context.Background(), executor.Spec{Root: s.newRoot(t), Args: []string{"/bin/sh", "-c", "sleep 1000 & echo bye"}},
			executor.IO{Stdout: &out})
	}()
	select {
	case err := <-done:
		if err != nil || out.String() != "bye\n" {
			t.Fatalf("got %v, output %q", err, out.String())
		}
	case <-time.After(guard):
		t.Fatal("a background process kept the run alive")
	}
}

func (s *suite) testEscapes(t *testing.T) {
	for _, script := range []string{
		"mount -t tmpfs none /mnt",
		"mount --bind / /mnt",
		"mknod /tmp/sda b 8 0 && cat /tmp/sda > /dev/null",
		"chroot /proc/1/root /bin/true && test ! -e /proc/1/root/etc/group",
	} {
		if _, _, err := s.run(t, executor.Spec{Args: []string{"/bin/sh", "-c", script}}, ""); err == nil {
			t.Errorf("%q succeeded", script)
		}
	}
	// PID 1 is the sandbox's init, whose root is the sandbox's root. With
	// all capabilities its root is readable; with the default set the
	// kernel may refuse it, but it must never show the host's.
	out := s.sh(t, executor.Spec{Insecure: true}, "cat /proc/1/root/etc/passwd")
	if out != Passwd {
		t.Errorf("/proc/1/root/etc/passwd is not the sandbox's: %q", out)
	}
	out, _, err := s.run(t, executor.Spec{Args: []string{"cat", "/proc/1/root/etc/passwd"}}, "")
	if err == nil && out != Passwd {
		t.Errorf("/proc/1/root/etc/passwd is not the sandbox's: %q", out)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
