package fileop

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/llb"
)

// Mkdir creates a directory in destRoot. With MakeParents missing parents
// are created with the same mode and owner and an existing directory is not
// an error; without it the parent must exist and the path must not.
func Mkdir(ctx context.Context, destRoot string, a *llb.MkdirAction) error {
	rel := local.Clean(a.Path)
	if rel == "." {
		if a.MakeParents {
			return nil
		}
		return fmt.Errorf("mkdir %s: file exists", a.Path)
	}
	m, err := actionMeta(destRoot, a.Chown, a.Mode, a.Timestamp)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", a.Path, err)
	}
	if !a.MakeParents {
		host, err := local.Resolve(destRoot, rel)
		if err != nil {
			return err
		}
		if err := os.Mkdir(host, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", a.Path, unwrapPath(err))
		}
		return applyMeta(host, m, true)
	}
	cur := "."
	for _, part := range strings.Split(rel, "/") {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur = path.Join(cur, part)
		host, err := local.Resolve(destRoot, cur)
		if err != nil {
			return err
		}
		created, err := mkdirChain(destRoot, host)
		if err != nil {
			return fmt.Errorf("mkdir %s: %w", a.Path, err)
		}
		for i := len(created) - 1; i >= 0; i-- {
			if err := applyMeta(created[i], m, true); err != nil {
				return fmt.Errorf("mkdir %s: %w", a.Path, err)
			}
		}
	}
	return nil
}

// mkdirChain creates host, a resolved path below root, and its missing
// parents, with mode 0700 (the caller sets metadata), and returns the
// directories it created, outermost first. Components that exist must be
// directories.
func mkdirChain(root, host string) ([]string, error) {
	rel := local.RelTo(root, host)
	if rel == "." {
		return nil, nil
	}
	var created []string
	cur := filepath.Clean(root)
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err == nil {
			if !fi.IsDir() {
				return created, fmt.Errorf("/%s is not a directory", local.RelTo(root, cur))
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return created, err
		}
		if err := os.Mkdir(cur, 0o700); err != nil {
			return created, fmt.Errorf("create directory /%s: %w", local.RelTo(root, cur), unwrapPath(err))
		}
		created = append(created, cur)
	}
	return created, nil
}

// Mkfile writes a file in destRoot with Data, replacing an existing file.
// A symlink at Path is followed inside destRoot; the parent must exist.
func Mkfile(ctx context.Context, destRoot string, a *llb.MkfileAction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	host, err := local.Resolve(destRoot, a.Path)
	if err != nil {
		return err
	}
	if local.RelTo(destRoot, host) == "." {
		return fmt.Errorf("mkfile %s: is the root directory", a.Path)
	}
	m, err := actionMeta(destRoot, a.Chown, a.Mode, a.Timestamp)
	if err != nil {
		return fmt.Errorf("mkfile %s: %w", a.Path, err)
	}
	if fi, err := os.Lstat(host); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("mkfile %s: is a directory", a.Path)
		}
		if err := os.Remove(host); err != nil {
			return fmt.Errorf("mkfile %s: remove existing file: %w", a.Path, err)
		}
	}
	if err := writeFileFrom(strings.NewReader(string(a.Data)), host, m); err != nil {
		return fmt.Errorf("mkfile %s: %w", a.Path, unwrapPath(err))
	}
	return nil
}

// Rm removes a path (recursively) from destRoot. A symlink at Path is
// removed, not its target. With AllowWildcard Path may be a pattern; with
// AllowNotFound a missing path or an empty match is not an error.
func Rm(ctx context.Context, destRoot string, a *llb.RmAction) error {
	paths := []string{local.Clean(a.Path)}
	if a.AllowWildcard && strings.ContainsAny(a.Path, `*?[\`) {
		var err error
		if paths, err = local.Glob(ctx, destRoot, a.Path); err != nil {
			return fmt.Errorf("rm %s: %w", a.Path, err)
		}
	}
	if len(paths) == 0 && !a.AllowNotFound {
		return fmt.Errorf("rm %s: no such file or directory", a.Path)
	}
	for _, rel := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rel == "." {
			return fmt.Errorf("rm %s: refusing to remove the root directory", a.Path)
		}
		host, err := local.ResolveParent(destRoot, rel)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(host); errors.Is(err, fs.ErrNotExist) {
			if a.AllowNotFound {
				continue
			}
			return fmt.Errorf("rm %s: no such file or directory", a.Path)
		}
		if err := os.RemoveAll(host); err != nil {
			return fmt.Errorf("rm %s: %w", a.Path, err)
		}
	}
	return nil
}

// actionMeta is the metadata of a file or directory made by Mkdir or
// Mkfile: the given mode, the Chown owner (0:0 by default), the given time
// or now.
func actionMeta(destRoot string, c *llb.Chown, mode uint32, ts *time.Time) (meta, error) {
	m := meta{mode: mode & 0o7777, atime: time.Now(), mtime: time.Now()}
	owner, err := resolveChown(destRoot, c)
	if err != nil {
		return meta{}, err
	}
	if owner != nil {
		m.uid, m.gid = owner.uid, owner.gid
	}
	if ts != nil {
		m.atime, m.mtime = *ts, *ts
	}
	return m, nil
}

// unwrapPath drops the host path from an *fs.PathError so messages show
// paths as the image sees them.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
