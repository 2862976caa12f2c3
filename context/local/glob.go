package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// hasMeta reports whether p holds a wildcard character.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// Glob returns the root-relative slash paths below root that match pattern:
// filepath.Match syntax per path component, and a "**" component for zero or
// more directories. Results are sorted; components without wildcards are
// resolved like Resolve, wildcard components match directory entries and
// never descend into symlinks. A cancelled ctx stops the search with
// ctx.Err().
func Glob(ctx context.Context, root, pattern string) ([]string, error) {
	pattern = Clean(pattern)
	if pattern == "." {
		return []string{"."}, nil
	}
	parts := strings.Split(pattern, "/")
	// Resolve the literal prefix chroot-style.
	i := 0
	for i < len(parts) && !hasMeta(parts[i]) {
		i++
	}
	if i == len(parts) {
		return []string{pattern}, nil
	}
	prefix := "."
	if i > 0 {
		prefix = path.Join(parts[:i]...)
	}
	host, err := Resolve(root, prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	err = globDir(ctx, host, RelTo(root, host), parts[i:], func(rel string) {
		if !seen[rel] {
			seen[rel] = true
			out = append(out, rel)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out) // a parent sorts before its children
	return out, nil
}

// globDir matches parts against the directory host, whose root-relative path
// is rel, and reports every full match.
func globDir(ctx context.Context, host, rel string, parts []string, found func(string)) error {
	if len(parts) == 0 {
		found(rel)
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err // once per path looked at: each costs an lstat anyway
	}
	fi, err := os.Lstat(host)
	if err != nil || !fi.IsDir() {
		return nil // nothing to match below a missing path or a non-directory
	}
	if parts[0] == "**" {
		if err := globDir(ctx, host, rel, parts[1:], found); err != nil {
			return err
		}
	}
	names, err := readNames(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		child, childRel := filepath.Join(host, name), path.Join(rel, name)
		if parts[0] == "**" {
			// "**" keeps consuming directories; a file may end the pattern.
			if err := globDir(ctx, child, childRel, parts, found); err != nil {
				return err
			}
			continue
		}
		ok, err := path.Match(parts[0], name)
		if err != nil {
			return fmt.Errorf("match pattern %q: %w", parts[0], err)
		}
		if ok {
			if err := globDir(ctx, child, childRel, parts[1:], found); err != nil {
				return err
			}
		}
	}
	return nil
}
