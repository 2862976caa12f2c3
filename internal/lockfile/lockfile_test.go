package lockfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process that holds a lock (see
// TestMain) instead of running tests.
const helperEnv = "STRATA_LOCKFILE_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper holds a lock until its stdin closes: "create:PATH" makes the lock
// file itself, "inherited" holds the locked descriptor 3 that its parent
// passed. It says "ready" once it holds the lock.
func helper(mode string) int {
	var f *os.File
	switch {
	case strings.HasPrefix(mode, "create:"):
		var err error
		if f, err = Create(strings.TrimPrefix(mode, "create:")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case mode == "inherited":
		f = os.NewFile(3, "inherited")
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	f.Close()
	return 0
}

// startHelper runs the helper, waits until it holds the lock and returns a
// function that makes it exit and waits for it.
func startHelper(t *testing.T, mode string, extra ...*os.File) (stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.ExtraFiles = extra
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("helper %s: %q, %v", mode, line, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper %s: %v", mode, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func mustCreate(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestLockIfDead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup prepares path; release, if returned, makes its holder go.
		setup func(t *testing.T, p string) (release func())
		// opened runs once between LockIfDead's open and lock.
		opened   func(t *testing.T, p string)
		wantDead bool
		wantFile bool
	}{
		{name: "missing file", wantDead: true},
		{
			name: "file nobody holds",
			setup: func(t *testing.T, p string) func() {
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			wantDead: true, wantFile: true,
		},
		{
			name: "held by another open file of this process",
			setup: func(t *testing.T, p string) func() {
				f := mustCreate(t, p)
				return func() { f.Close() }
			},
		},
		{
			name: "held by a child process",
			setup: func(t *testing.T, p string) func() {
				return startHelper(t, "create:"+p)
			},
		},
		{
			name: "held through a descriptor passed to a child",
			setup: func(t *testing.T, p string) func() {
				f := mustCreate(t, p)
				stop := startHelper(t, "inherited", f)
				f.Close() // the child's copy keeps the lock
				return stop
			},
		},
		{
			name: "removed between open and lock",
			setup: func(t *testing.T, p string) func() {
				mustCreate(t, p).Close()
				return nil
			},
			opened: func(t *testing.T, p string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			},
			wantDead: true,
		},
		{
			name: "removed and made anew by its live owner between open and lock",
			setup: func(t *testing.T, p string) func() {
				mustCreate(t, p).Close()
				return nil
			},
			opened: func(t *testing.T, p string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				mustCreate(t, p)
			},
		},
		{
			name: "replaced by a file nobody holds between open and lock",
			setup: func(t *testing.T, p string) func() {
				mustCreate(t, p).Close()
				return nil
			},
			opened: func(t *testing.T, p string) {
				if err := os.Rename(p, p+".old"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantDead: true, wantFile: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.lock")
			var release func()
			if tc.setup != nil {
				release = tc.setup(t, p)
			}
			if tc.opened != nil {
				testHookOpened = func() {
					testHookOpened = nil
					tc.opened(t, p)
				}
				t.Cleanup(func() { testHookOpened = nil })
			}
			check(t, p, tc.wantDead, tc.wantFile)
			if release != nil {
				release()
				check(t, p, true, true)
			}
		})
	}
}

// check calls LockIfDead(p) and compares what it returns.
func check(t *testing.T, p string, wantDead, wantFile bool) {
	t.Helper()
	f, dead, err := LockIfDead(p)
	if err != nil {
		t.Fatalf("LockIfDead: %v", err)
	}
	if dead != wantDead || (f != nil) != wantFile {
		t.Fatalf("LockIfDead: dead %v, file %v; want dead %v, file %v", dead, f != nil, wantDead, wantFile)
	}
	if f == nil {
		return
	}
	defer f.Close()
	if same, err := samePath(f, p); err != nil || !same {
		t.Errorf("the file locked is not the one at the path (%v)", err)
	}
	// While f is held, the lock is not dead to anyone else.
	if g, dead, err := LockIfDead(p); dead || g != nil || err != nil {
		t.Errorf("LockIfDead while held: dead %v, file %v, err %v", dead, g != nil, err)
	}
}

func TestCreate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create func(string) (*os.File, error)
	}{
		{"Create", Create},
		{"without O_TMPFILE", createNamed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "a.lock")
			f, err := tc.create(p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name() != p {
				t.Errorf("Name() = %q, want %q", f.Name(), p)
			}
			if same, err := samePath(f, p); err != nil || !same {
				t.Errorf("the file returned is not the one at the path (%v)", err)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("stat: %v, %v", fi, err)
			}
			if _, dead, err := LockIfDead(p); dead || err != nil {
				t.Errorf("LockIfDead of a new lock: dead %v, err %v", dead, err)
			}
			if _, err := tc.create(p); !errors.Is(err, os.ErrExist) {
				t.Errorf("create over an existing lock: %v, want ErrExist", err)
			}
			f.Close()
			g, dead, err := LockIfDead(p)
			if !dead || g == nil || err != nil {
				t.Fatalf("LockIfDead after close: dead %v, file %v, err %v", dead, g != nil, err)
			}
			g.Close()
			if m, _ := filepath.Glob(filepath.Join(dir, NewPrefix+"*")); len(m) != 0 {
				t.Errorf("temporary files left: %v", m)
			}
		})
	}
}

// A sweep that removes every lock file it can take never takes one that
// Create is making, also without O_TMPFILE (where the file has a name for a
// moment before it is locked).
func TestCreateNamedRacesSweep(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				p := filepath.Join(dir, e.Name())
				if f, dead, _ := LockIfDead(p); f != nil && dead {
					os.Remove(p)
					f.Close()
				}
			}
			runtime.Gosched() // a sweep runs now and then, not in a loop that starves the creator
		}
	}()
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("l%d.lock", i))
		f, err := createNamed(p)
		if err != nil {
			t.Fatal(err)
		}
		if same, err := samePath(f, p); err != nil || !same {
			t.Fatalf("lock %d was swept while held (%v)", i, err)
		}
		f.Close()
	}
	cancel()
	wg.Wait()
}

func TestExclusiveShared(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.lock")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b, c := open(), open(), open()
	ctx := context.Background()
	if err := Shared(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := Shared(ctx, b); err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if ok, err := TryExclusive(c); ok || err != nil {
		t.Fatalf("TryExclusive while shared: %v, %v", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := Exclusive(short, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exclusive while shared: %v, want the context's end", err)
	}
	done := make(chan error, 1)
	go func() { done <- Exclusive(ctx, c) }()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	b.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exclusive still waiting after the shared holders left")
	}
	d := open()
	if ok, err := TryExclusive(d); ok || err != nil {
		t.Fatalf("TryExclusive while exclusive: %v, %v", ok, err)
	}
}
