// Package fileop performs the file actions of an llb.FileOp on plain host
// directories that the caller has already mounted: Copy (COPY and ADD),
// Mkdir (WORKDIR), Mkfile (COPY <<EOF) and Rm.
//
// Vocabulary:
//   - The source is a tree files are read from: the build context or a
//     stage's root (a Source). What a copy reads from it is a
//     local.Selection, the same one cache/contenthash checksums.
//   - The destination root (destRoot) is the tree being built. Every path in
//     it is resolved as inside a chroot: ".." stops at destRoot and a symlink,
//     even an absolute one or one pointing "outside", resolves below destRoot.
//     Nothing is ever written outside destRoot.
//   - "Into" a destination: when Dest ends in "/", names an existing
//     directory, or the copy uses Parents, sources land below Dest under their
//     names; otherwise the single source becomes Dest.
//
// A copy writes each entry with its source's mode, times, extended
// attributes and hard links. Owners are 0:0 for the build context and kept
// for stages, unless Chown names an owner; Chmod and Timestamp override the
// mode and the times. Directories get their final metadata after their
// contents are written.
//
// These functions assume nothing else changes destRoot while they run (it is
// a snapshot the caller owns); the source may be the live build context.
package fileop

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/llb"
)

// Source is a tree files are copied from: Root, with the .dockerignore
// patterns of the build context in Excludes (nil for stages) and Context
// set for the build context.
type Source = local.Source

// NotFoundError says a copy source does not exist; it names the source and
// the paths looked for.
type NotFoundError = local.NotFoundError

// Copy performs a CopyAction from src into destRoot; both are host
// directories. See the package documentation for the semantics.
func Copy(ctx context.Context, src Source, destRoot string, a *llb.CopyAction) error {
	return CopyWith(ctx, src, destRoot, a, CopyOptions{})
}

// CopyOptions tune how a Copy writes; the result is the same with any.
type CopyOptions struct {
	// Reuse, when set, links unchanged files from an earlier result of the
	// same copy instead of writing them (see Reuse).
	Reuse *Reuse
	// Workers bounds how many regular files are written at once (0 means
	// defaultWorkers). Directories, links and all metadata ordering stay
	// sequential.
	Workers int
}

// defaultWorkers is how many files a copy writes at once: the work is
// mostly system calls, which overlap well even on few cores.
const defaultWorkers = 4

// CopyWith is Copy with options.
func CopyWith(ctx context.Context, src Source, destRoot string, a *llb.CopyAction, opts CopyOptions) error {
	sel, err := local.Select(ctx, src, a)
	if err != nil {
		return err
	}
	c, err := newCopier(ctx, sel, destRoot, a)
	if err != nil {
		return err
	}
	if opts.Reuse != nil {
		c.reuse = &reuser{Reuse: opts.Reuse, linked: map[inode]bool{}, upperDirs: map[string]bool{}}
	}
	c.workers = opts.Workers
	if c.workers <= 0 {
		c.workers = defaultWorkers
	}
	destHost, err := local.Resolve(c.root, a.Dest)
	if err != nil {
		return err
	}
	into := strings.HasSuffix(a.Dest, "/") || a.Parents || isDir(destHost)
	if !into && (len(sel.Matches) > 1 || len(a.Src) > 1) {
		return fmt.Errorf("copy to %s: multiple sources need a directory destination ending in /", a.Dest)
	}
	for i := range sel.Matches {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := &sel.Matches[i]
		if a.AttemptUnpack && m.Info.Mode().IsRegular() {
			done, err := c.unpack(m, destHost)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		target, err := c.prepareTarget(m, destHost, into)
		if err != nil {
			return err
		}
		if err := c.copyMatch(m, target); err != nil {
			return err
		}
	}
	return c.finish()
}

// prepareTarget creates the directories a Match is written below and
// returns the host path the Match itself becomes.
func (c *copier) prepareTarget(m *local.Match, destHost string, into bool) (string, error) {
	if !into {
		parent := filepath.Dir(destHost)
		if c.a.CreateDestPath {
			return destHost, c.mkdirAll(parent, true)
		}
		if !isDir(parent) {
			return "", fmt.Errorf("copy to %s: parent directory does not exist", c.show(destHost))
		}
		return destHost, nil
	}
	if err := c.mkdirAll(destHost, c.a.CreateDestPath); err != nil {
		return "", err
	}
	if m.Name == "." {
		return destHost, nil
	}
	rel := path.Join(local.RelTo(c.root, destHost), m.Name)
	parent, err := local.Resolve(c.root, path.Dir(rel))
	if err != nil {
		return "", err
	}
	if err := c.mkdirAll(parent, true); err != nil {
		return "", err
	}
	// Resolve again: the parent may be a symlink that now has a target.
	return local.ResolveParent(c.root, rel)
}

// copyMatch writes one Match at target and everything below it. Regular
// files with a single link are written by up to c.workers goroutines; the
// copy of the Match is complete when copyMatch returns.
func (c *copier) copyMatch(m *local.Match, target string) error {
	dirs := map[string]string{}
	g, gctx := errgroup.WithContext(c.ctx)
	g.SetLimit(c.workers)
	err := c.sel.Walk(c.ctx, m, func(e local.Entry) error {
		host := target
		if e.Rel != "" {
			parent, ok := dirs[path.Dir(e.Rel)]
			if !ok {
				return fmt.Errorf("copy %s: parent directory was not copied", e.Host)
			}
			host = filepath.Join(parent, path.Base(e.Rel))
		} else if e.Info.IsDir() && m.Contents {
			// A directory whose contents are copied to a new path: the
			// path is made like any missing destination directory (0755,
			// the copy's owner), not with the source directory's metadata.
			if err := c.mkdirAll(host, true); err != nil {
				return err
			}
		}
		if singleFile(e) {
			if err := gctx.Err(); err != nil {
				return err
			}
			g.Go(func() error {
				_, err := c.place(e, host)
				return err
			})
			return nil
		}
		written, err := c.place(e, host)
		if err != nil {
			return err
		}
		if e.Info.IsDir() {
			key := e.Rel
			if key == "" {
				key = "."
			}
			dirs[key] = written
		}
		return nil
	})
	if gerr := g.Wait(); gerr != nil {
		return gerr
	}
	return err
}

// singleFile says whether e is a regular file with no other link, which a
// copy may write in any order.
func singleFile(e local.Entry) bool {
	st, ok := e.Info.Sys().(*syscall.Stat_t)
	return ok && e.Info.Mode().IsRegular() && st.Nlink == 1
}

// mkdirAll makes sure the directory dir (a host path below the destination
// root, already resolved) exists. Missing parents are created only when
// parents is set; created directories are 0755 and owned by the copy's
// owner (0:0 by default).
func (c *copier) mkdirAll(dir string, parents bool) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("copy to %s: not a directory", c.show(dir))
		}
		return nil
	}
	rel := local.RelTo(c.root, dir)
	if !parents {
		parent, err := local.Resolve(c.root, path.Dir(rel))
		if err != nil {
			return err
		}
		if !isDir(parent) {
			return fmt.Errorf("copy to %s: parent directory does not exist", c.show(dir))
		}
	}
	cur := "."
	for _, part := range strings.Split(rel, "/") {
		cur = path.Join(cur, part)
		host, err := local.Resolve(c.root, cur)
		if err != nil {
			return err
		}
		created, err := mkdirChain(c.root, host)
		for _, d := range created {
			c.pending = append(c.pending, c.defaultDirMeta(d))
		}
		if err != nil {
			return fmt.Errorf("copy to %s: %w", c.show(dir), err)
		}
	}
	return nil
}

// show names a host path below the destination root as the image sees it.
func (c *copier) show(host string) string {
	return path.Clean("/" + local.RelTo(c.root, host))
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
