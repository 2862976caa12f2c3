package ops

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/llb"
)

// testRepo is a local repository: commit one (tagged v1, annotated, and
// lightweight-tagged light) holds README and sub/a.txt; commit two, the tip
// of main, adds an executable sub/run.sh and a symlink sub/link.
type testRepo struct {
	dir      string
	url      string
	one, two string
}

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs the git binary (Debian package git)")
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := runGit(context.Background(), dir, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	requireGit(t)
	dir := filepath.Join(t.TempDir(), "repo")
	write := func(name, data string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	write("README", "version one\n", 0o644)
	write("sub/a.txt", "a\n", 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "one")
	git(t, dir, "tag", "-a", "v1", "-m", "release one")
	git(t, dir, "tag", "light")
	one := git(t, dir, "rev-parse", "HEAD")
	write("README", "version two\n", 0o644)
	write("sub/run.sh", "#!/bin/sh\n", 0o755)
	if err := os.Symlink("a.txt", filepath.Join(dir, "sub/link")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "two")
	return &testRepo{dir: dir, url: "file://" + dir, one: one, two: git(t, dir, "rev-parse", "HEAD")}
}

func gitVertex(remote, ref, subdir string, keep bool, checksum string) *llb.Vertex {
	return &llb.Vertex{
		Op: &llb.SourceOp{Source: llb.SourceGit, Ref: remote, Digest: digest.Digest(checksum),
			Git: &llb.GitSource{Ref: ref, Subdir: subdir, KeepGitDir: keep}},
		Meta: llb.Meta{Name: "load git " + remote},
	}
}

func TestGitRefsResolveToTheirTrees(t *testing.T) {
	w := newTestWorker(t)
	r := newTestRepo(t)
	for _, tc := range []struct {
		ref, readme string
	}{
		{"", "version two\n"},
		{"main", "version two\n"},
		{"refs/heads/main", "version two\n"},
		{"v1", "version one\n"},
		{"light", "version one\n"},
		{r.one, "version one\n"},
	} {
		ref, err := solve(t, w, gitVertex(r.url, tc.ref, "", false, ""))
		if err != nil {
			t.Errorf("ref %q: %v", tc.ref, err)
			continue
		}
		files, all := readTree(t, w, ref)
		if got := files["README"].data; got != tc.readme {
			t.Errorf("ref %q: README = %q, want %q", tc.ref, got, tc.readme)
		}
		if slices.ContainsFunc(all, func(p string) bool { return p == ".git" || strings.HasPrefix(p, ".git/") }) {
			t.Errorf("ref %q: .git kept without KeepGitDir: %v", tc.ref, all)
		}
	}
}

func TestGitSubdirKeepsModesAndLinks(t *testing.T) {
	w := newTestWorker(t)
	r := newTestRepo(t)
	ref, err := solve(t, w, gitVertex(r.url, "main", "sub", false, ""))
	if err != nil {
		t.Fatal(err)
	}
	files, all := readTree(t, w, ref)
	slices.Sort(all)
	if want := []string{"a.txt", "link", "run.sh"}; !slices.Equal(all, want) {
		t.Fatalf("tree of subdir = %v, want %v", all, want)
	}
	if f := files["run.sh"]; f.mode != 0o755 || f.data != "#!/bin/sh\n" {
		t.Errorf("run.sh mode %o data %q, want 755 and the script", f.mode, f.data)
	}
	err = w.withView(context.Background(), ref, func(root string) error {
		target, err := os.Readlink(filepath.Join(root, "link"))
		if err == nil && target != "a.txt" {
			t.Errorf("link points at %q, want a.txt", target)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	_, err = solve(t, w, gitVertex(r.url, "v1", "nope", false, ""))
	if err == nil || !strings.Contains(err.Error(), "subdir nope of "+r.url) {
		t.Errorf("missing subdir: error = %v", err)
	}
}

func TestGitKeepGitDir(t *testing.T) {
	w := newTestWorker(t)
	r := newTestRepo(t)
	ref, err := solve(t, w, gitVertex(r.url, "main", "", true, ""))
	if err != nil {
		t.Fatal(err)
	}
	err = w.withView(context.Background(), ref, func(root string) error {
		if head := git(t, root, "rev-parse", "HEAD"); head != r.two {
			t.Errorf("HEAD of the kept .git = %s, want %s", head, r.two)
		}
		if b := git(t, root, "rev-parse", "--abbrev-ref", "HEAD"); b != "main" {
			t.Errorf("checked-out branch %q, want main", b)
		}
		if u := git(t, root, "config", "remote.origin.url"); u != r.url {
			t.Errorf("origin %q, want %q", u, r.url)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGitCacheKeyFollowsTheCommit(t *testing.T) {
	w := newTestWorker(t)
	r := newTestRepo(t)
	key := func(ref, subdir string, keep bool) digest.Digest {
		t.Helper()
		o := &gitOp{w: w, op: gitVertex(r.url, ref, subdir, keep, "").Op.(*llb.SourceOp)}
		cm, err := o.CacheMap(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return cm.Digest
	}
	if key("v1", "", false) != key(r.one, "", false) || key("light", "", false) != key("v1", "", false) {
		t.Error("a tag and its commit have different keys")
	}
	if key("main", "", false) == key("v1", "", false) {
		t.Error("two commits share a key")
	}
	if key("main", "sub", false) == key("main", "", false) || key("main", "", true) == key("main", "", false) {
		t.Error("subdir or keep flag is not part of the key")
	}
	first, err := solve(t, w, gitVertex(r.url, "main", "", false, ""))
	if err != nil {
		t.Fatal(err)
	}
	before := key("main", "", false)
	again, err := solve(t, w, gitVertex(r.url, "main", "", false, ""))
	if err != nil {
		t.Fatal(err)
	}
	if again.Snapshot != first.Snapshot {
		t.Errorf("unchanged branch missed the cache: %s then %s", first.Snapshot, again.Snapshot)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "README"), []byte("version three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, r.dir, "commit", "-q", "-a", "-m", "three")
	if key("main", "", false) == before {
		t.Error("a moved branch kept its key")
	}
	moved, err := solve(t, w, gitVertex(r.url, "main", "", false, ""))
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := readTree(t, w, moved); files["README"].data != "version three\n" {
		t.Errorf("README after the branch moved = %q", files["README"].data)
	}
}

func TestGitErrors(t *testing.T) {
	w := newTestWorker(t)
	r := newTestRepo(t)
	for _, tc := range []struct {
		v    *llb.Vertex
		want string
	}{
		{gitVertex(r.url, "v1", "", false, r.one), ""},
		{gitVertex(r.url, "v1", "", false, r.one[:12]), ""},
		{gitVertex(r.url, "v1", "", false, r.two), "commit mismatch for " + r.url + ": got " + r.one + ", want " + r.two},
		{gitVertex(r.url, "nosuch", "", false, ""), "resolve nosuch of " + r.url + ": no such branch or tag"},
		{gitVertex(r.url, r.one[:10], "", false, ""), "abbreviated commits are not supported"},
		{gitVertex("file:///nonexistent/repo", "main", "", false, ""), "resolve main of file:///nonexistent/repo: git ls-remote: exit status"},
		{gitVertex(r.url, strings.Repeat("ab", 20), "", false, ""), "fetch " + strings.Repeat("ab", 20) + " of " + r.url + ": no such commit in the repository"},
	} {
		_, err := solve(t, w, tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.v.Op, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("error = %v, want it to say %q", err, tc.want)
		}
	}
}
