package layer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxLinks bounds the symlinks followed while resolving one path.
const maxLinks = 255

// resolveDir returns the real path, inside the root, of the directory dir
// (relative, clean, "" for the root), following symlinks as if the root were
// "/" and refusing those that climb out of it. Missing directories are made
// (0755, root-owned) when create is set, and are an os.ErrNotExist error
// otherwise. raw names the tar entry in errors.
func (a *applier) resolveDir(raw, dir string, create bool) (string, error) {
	links := 0
	real := "" // resolved path relative to the root
	rest := splitPath(dir)
	for len(rest) > 0 {
		el := rest[0]
		rest = rest[1:]
		next := joinName(real, el)
		full := filepath.Join(a.root, next)
		fi, err := os.Lstat(full)
		switch {
		case errors.Is(err, os.ErrNotExist) && create:
			if err := os.Mkdir(full, 0o755); err != nil {
				return "", fmt.Errorf("layer entry %q: %w", raw, err)
			}
			real = next
		case err != nil:
			return "", fmt.Errorf("layer entry %q: %w", raw, err)
		case fi.IsDir():
			real = next
		case fi.Mode()&os.ModeSymlink != 0:
			if links++; links > maxLinks {
				return "", fmt.Errorf("layer entry %q: too many levels of symbolic links", raw)
			}
			target, err := os.Readlink(full)
			if err != nil {
				return "", fmt.Errorf("layer entry %q: %w", raw, err)
			}
			rel := path.Join(real, target)
			if path.IsAbs(target) {
				rel = strings.TrimPrefix(path.Clean(target), "/")
			} else if rel == ".." || strings.HasPrefix(rel, "../") {
				return "", fmt.Errorf("layer entry %q %w (through symlink %s -> %s)", raw, ErrEscape, next, target)
			}
			real = ""
			rest = append(splitPath(rel), rest...)
		default:
			return "", fmt.Errorf("layer entry %q: parent %s is not a directory", raw, next)
		}
	}
	return filepath.Join(a.root, real), nil
}

func splitPath(p string) []string {
	var out []string
	for el := range strings.SplitSeq(p, "/") {
		if el != "" && el != "." {
			out = append(out, el)
		}
	}
	return out
}
