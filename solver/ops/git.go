package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
	"github.com/strata-build/strata/solver/ops/fileop"
)

// gitOp is a git repository at one commit (ADD <repo>#<ref>:<subdir>). Its
// output is the tree of that commit, or of one directory of it, with the
// repository's .git directory only when the op keeps it.
//
// Keying: the ref (a branch, a tag or a commit) is resolved to a commit with
// `git ls-remote` every build, and the key is that commit with the subdir and
// the keep flag, so a moved branch misses and an unchanged one hits without
// fetching anything. Exec fetches that one commit, shallow, with the git
// binary, checks it out in a scratch directory and copies the tree into a
// new snapshot.
type gitOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.SourceOp

	commit string // resolved by CacheMap
	branch string // the ref as a branch name, when it is one
}

// gitKey is what a repository's tree is keyed by.
type gitKey struct {
	Commit     string
	Subdir     string `json:",omitempty"`
	KeepGitDir bool   `json:",omitempty"`
	// Remote only matters with KeepGitDir: .git/config names it.
	Remote string `json:",omitempty"`
}

var (
	commitRE      = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)
	shortCommitRE = regexp.MustCompile(`^[0-9a-f]{4,39}$`)
)

func (o *gitOp) src() llb.GitSource {
	if o.op.Git != nil {
		return *o.op.Git
	}
	return llb.GitSource{}
}

func (o *gitOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	s := o.src()
	commit, branch, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	if want := o.op.Digest.String(); want != "" && !strings.HasPrefix(commit, want) {
		return nil, fmt.Errorf("commit mismatch for %s: got %s, want %s", o.op.Ref, commit, want)
	}
	o.commit, o.branch = commit, branch
	key := gitKey{Commit: commit, Subdir: cleanSubdir(s.Subdir), KeepGitDir: s.KeepGitDir}
	if s.KeepGitDir {
		key.Remote = o.op.Ref
	}
	return &solver.CacheMap{
		Digest: opDigest("git", key),
		Components: []solver.Component{
			{Name: "repository", Value: o.op.Ref},
			{Name: "commit", Value: commit},
			{Name: "subdir", Value: key.Subdir},
		},
	}, nil
}

func cleanSubdir(s string) string {
	s = filepath.Clean("/" + s)
	return strings.TrimPrefix(s, "/")
}

// resolve turns the op's ref into a commit. A full commit hash is taken as
// it is; a name is looked up like git does (refs/<name>, then a tag, then a
// branch), an annotated tag peeled to its commit; no ref means HEAD.
func (o *gitOp) resolve(ctx context.Context) (commit, branch string, err error) {
	ref := o.src().Ref
	if commitRE.MatchString(ref) {
		return ref, "", nil
	}
	if ref == "" {
		ref = "HEAD"
	}
	out, err := runGit(ctx, "", "ls-remote", "--", o.op.Ref)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s of %s: %w", ref, o.op.Ref, err)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok {
			refs[name] = sha
		}
	}
	cands := []string{ref, "refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref}
	if ref == "HEAD" {
		cands = cands[:1]
	}
	for _, c := range cands {
		sha, ok := refs[c]
		if !ok {
			continue
		}
		if peeled, ok := refs[c+"^{}"]; ok {
			sha = peeled
		}
		if b, ok := strings.CutPrefix(c, "refs/heads/"); ok {
			branch = b
		}
		return sha, branch, nil
	}
	if shortCommitRE.MatchString(ref) {
		return "", "", fmt.Errorf("resolve %s of %s: abbreviated commits are not supported, give the full hash", ref, o.op.Ref)
	}
	return "", "", fmt.Errorf("resolve %s of %s: no such branch or tag", ref, o.op.Ref)
}

func (o *gitOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	if o.commit == "" {
		if _, err := o.CacheMap(ctx); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp(o.w.TempDir, "git-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := o.checkout(ctx, work); err != nil {
		return nil, err
	}
	s := o.src()
	if !s.KeepGitDir {
		if err := os.RemoveAll(filepath.Join(work, ".git")); err != nil {
			return nil, err
		}
	}
	root := work
	if sub := cleanSubdir(s.Subdir); sub != "" {
		if root, err = securejoin.SecureJoin(work, sub); err != nil {
			return nil, fmt.Errorf("subdir %s of %s: %w", sub, o.op.Ref, err)
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("subdir %s of %s at %s: not a directory in the repository", sub, o.op.Ref, o.commit)
		}
	}
	active := randomID("git-")
	mounts, err := o.w.Snapshotter.Prepare(ctx, active, "")
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	err = mount.WithTemp(o.w.TempDir, mounts, func(dest string) error {
		a := &llb.CopyAction{Src: []string{"/"}, Dest: "/", CopyDirContents: true}
		return fileop.Copy(ctx, fileop.Source{Root: root}, dest, a)
	})
	if err != nil {
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, fmt.Errorf("copy %s into a snapshot: %w", o.op.Ref, err)
	}
	return o.w.commit(ctx, active)
}

// checkout fetches the resolved commit into dir, shallow, and checks it out
// with its submodules.
func (o *gitOp) checkout(ctx context.Context, dir string) error {
	steps := [][]string{
		{"init", "-q"},
		{"remote", "add", "origin", o.op.Ref},
	}
	for _, args := range steps {
		if _, err := runGit(ctx, dir, args...); err != nil {
			return fmt.Errorf("clone %s: %w", o.op.Ref, err)
		}
	}
	if _, err := runGit(ctx, dir, "fetch", "-q", "--depth=1", "--no-tags", "origin", o.commit); err != nil {
		// A server that refuses to serve a commit by hash: fetch the whole
		// history of every ref and find it there.
		if _, err2 := runGit(ctx, dir, "fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"); err2 != nil {
			return fmt.Errorf("fetch %s of %s: %w", o.commit, o.op.Ref, errors.Join(err, err2))
		}
		if _, err := runGit(ctx, dir, "rev-parse", "-q", "--verify", o.commit+"^{commit}"); err != nil {
			return fmt.Errorf("fetch %s of %s: no such commit in the repository", o.commit, o.op.Ref)
		}
	}
	args := []string{"checkout", "-q", "--detach", o.commit}
	if o.branch != "" {
		args = []string{"checkout", "-q", "-B", o.branch, o.commit}
	}
	if _, err := runGit(ctx, dir, args...); err != nil {
		return fmt.Errorf("check out %s of %s: %w", o.commit, o.op.Ref, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".gitmodules")); err == nil {
		if _, err := runGit(ctx, dir, "submodule", "update", "--init", "--recursive", "--depth=1"); err != nil {
			return fmt.Errorf("submodules of %s: %w", o.op.Ref, err)
		}
	}
	return nil
}

// runGit runs git in dir (the current directory when ""), with no prompt
// and no user or system configuration, and returns its stdout; an error
// carries its stderr.
func runGit(ctx context.Context, dir string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git is needed for git sources: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", "advice.detachedHead=false", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ASKPASS=/bin/false",
		"SSH_ASKPASS=/bin/false",
	)
	if os.Getenv("GIT_SSH_COMMAND") == "" {
		// Fail on an unknown host or a passphrase instead of asking.
		cmd.Env = append(cmd.Env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("git %s: %w", args[0], err)
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return stdout.Bytes(), nil
}
