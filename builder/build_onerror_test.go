package builder_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/executor/executortest"
)

// onErrorDockerfile's last step writes /marker and a file in its cache
// mount, with a secret as a file and as an env variable, then fails.
const onErrorDockerfile = `FROM busybox
ENV FOO=from-env
WORKDIR /work
RUN --mount=type=secret,id=tok,env=TOKEN,target=/run/secrets/tok --mount=type=cache,target=/cache echo mark-$((6*7)) > /marker && echo cached-$((7*8)) > /cache/c && exit 3
`

// onErrorShellTyped is what the tests type into the debug shell, and
// wantShell what it must print: the failed command's files (its root and
// its cache mount), its secret file, its env, its working directory.
const onErrorShellTyped = `cat /marker /cache/c /run/secrets/tok; echo; echo "foo=$FOO token-length=${#TOKEN}"; pwd; exit` + "\n"

var wantShell = []string{"mark-42", "cached-56", secretValue, "foo=from-env token-length=19", "/work"}

// onErrorSetup is a CLI store, the context of onErrorDockerfile and the
// secret's file.
func onErrorSetup(t *testing.T) (bin, root, dir, secret string) {
	t.Helper()
	bin = strataBinary(t, true)
	root = cliStore(t)
	dir = writeContext(t, map[string]string{"Dockerfile": onErrorDockerfile})
	secret = filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	return bin, root, dir, secret
}

// storeState is what a store holds: its snapshots and result records.
func storeState(t *testing.T, root string) (snaps, records []string) {
	t.Helper()
	st := openStore(t, root)
	defer st.Close()
	checkStoreClean(t, st)
	for name := range snapshotNames(t, st) {
		snaps = append(snaps, name)
	}
	for _, k := range recordKeys(t, st) {
		records = append(records, k.String())
	}
	slices.Sort(snaps)
	slices.Sort(records)
	return snaps, records
}

// terminalRun is a command started on a terminal.
type terminalRun struct {
	term *executortest.Terminal
	done chan struct{} // closed when it ended
	err  error         // its end
}

// onTerminal starts cmd in a new session whose controlling terminal is a
// pseudo-terminal, as a shell starts a command.
func onTerminal(t *testing.T, cmd *exec.Cmd) *terminalRun {
	t.Helper()
	r := &terminalRun{term: executortest.NewTerminal(t, 40, 120), done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.term.Slave, r.term.Slave, r.term.Slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
	})
	return r
}

// wait waits for the command's end, and fails t after a minute.
func (r *terminalRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Minute):
		t.Fatalf("strata did not end; the terminal shows:\n%s", r.term.Output())
		return nil
	}
}

// debugSession waits for the debug shell on r's terminal, types into it
// and checks what it shows, then that strata fails as the build would
// have.
func debugSession(t *testing.T, r *terminalRun) {
	t.Helper()
	term := r.term
	term.WaitFor(t, "built-in shell", time.Minute)
	term.Type(t, onErrorShellTyped)
	err := r.wait(t)
	out := term.Output()
	for _, w := range wantShell {
		if !strings.Contains(out, w+"\r\n") {
			t.Errorf("the shell did not print %q; the terminal shows:\n%s", w, out)
		}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("strata ended with %v, want exit code 1", err)
	}
	if !strings.Contains(out, "ERROR: Dockerfile:4") || !strings.Contains(out, "did not complete successfully: exit code: 3") {
		t.Errorf("strata did not fail with the step's error; the terminal shows:\n%s", out)
	}
	if i, j := strings.Index(out, "mark-42"), strings.Index(out, "ERROR: Dockerfile:4"); j < i {
		t.Errorf("the build's error came before the shell ended:\n%s", out)
	}
	if tio := term.Termios(t); tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("strata left the terminal raw: lflag %#x", tio.Lflag)
	}
}

// --on-error=shell on a terminal: the failed step's shell sees what its
// command wrote, its mounts and env; the build then fails as usual, and
// the store holds what a plain failed build leaves, no more.
func TestCLIOnErrorShell(t *testing.T) {
	bin, root, dir, secret := onErrorSetup(t)
	// A failed build without --on-error: the store the shell must leave.
	out, err := strataCmd(bin, root, "build", "--progress", "plain", "--secret", "id=tok,src="+secret, dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exit code: 3") {
		t.Fatalf("the build did not fail at the last step: %v\n%s", err, out)
	}
	snaps, records := storeState(t, root)

	r := onTerminal(t, strataCmd(bin, root, "build", "--on-error=shell", "--secret", "id=tok,src="+secret, dir))
	debugSession(t, r)
	if out := r.term.Output(); !strings.Contains(out, "strata: [3/3] RUN --mount=type=secret") || !strings.Contains(out, "failed with exit code 3") {
		t.Errorf("no word of the failed step before the shell:\n%s", out)
	}
	if s, r := storeState(t, root); !slices.Equal(s, snaps) || !slices.Equal(r, records) {
		t.Errorf("the store after the shell:\nsnapshots %v\nrecords %v\nafter a failed build:\nsnapshots %v\nrecords %v", s, r, snaps, records)
	}

	// The runc runtime gives the shell as well.
	if _, err := exec.LookPath("runc"); err == nil {
		debugSession(t, onTerminal(t, strataCmd(bin, root, "build", "--runtime=runc", "--on-error=shell", "--secret", "id=tok,src="+secret, dir)))
	}

	// A shell the image lacks is a clear error; the build fails as usual.
	r = onTerminal(t, strataCmd(bin, root, "build", "--on-error=shell", "--on-error-shell=/bin/bash", "--secret", "id=tok,src="+secret, dir))
	err = r.wait(t)
	var ee *exec.ExitError
	if out := r.term.Output(); !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "could not start the shell /bin/bash") ||
		!strings.Contains(out, "/bin/bash: no such file or directory") || !strings.Contains(out, "exit code: 3") {
		t.Errorf("--on-error-shell=/bin/bash: %v; the terminal shows:\n%s", err, out)
	}
}

// --on-error=shell without a terminal prints the failed step, its secrets
// hidden, and a command that gets the shell: run on a terminal, it does.
func TestCLIOnErrorShellWithoutTerminal(t *testing.T) {
	bin, root, dir, secret := onErrorSetup(t)
	cmd := strataCmd(bin, root, "build", "--progress", "plain", "--on-error=shell", "--secret", "id=tok,src="+secret, dir)
	cmd.Dir = t.TempDir() // the printed command must name it
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "did not complete successfully: exit code: 3") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if strings.Contains(string(out), secretValue) {
		t.Errorf("the output shows the secret:\n%s", out)
	}
	for _, w := range []string{
		"no terminal on stdin and stderr, so no shell was opened",
		"  step     [3/3] RUN --mount=type=secret",
		"  command  /bin/sh -c 'echo mark-$((6*7)) > /marker && echo cached-$((7*8)) > /cache/c && exit 3'\n",
		"  workdir  /work\n",
		"  user     root\n",
		"  network  default\n",
		"  env      FOO=from-env\n",
		"           TOKEN=(not shown)\n",
		"  mounts   /run/secrets/tok secret id=tok ro\n",
		"           /cache cache id=/cache sharing=shared\n",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the output lacks %q:\n%s", w, out)
		}
	}
	m := regexp.MustCompile(`run the build again with a terminal on stdin and stderr:\n  (.*)\n`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no command to get the shell:\n%s", out)
	}
	if !strings.HasPrefix(string(m[1]), "cd "+cmd.Dir+" && ") {
		t.Errorf("the command %q does not start where strata ran", m[1])
	}
	// The command, run by a shell on a terminal, opens the debug shell.
	rerun := exec.Command("/bin/sh", "-c", string(m[1]))
	rerun.Env = cmd.Env
	debugSession(t, onTerminal(t, rerun))
}
