// Package local reads source trees for COPY and ADD: the build context
// directory, or a stage's root filesystem mounted on the host.
//
// Vocabulary:
//   - A Source is a host directory (Root) seen as "/" of a tree. For the
//     build context it carries the .dockerignore patterns (Excludes), which
//     make the excluded files invisible, as if they were not in the context.
//   - Resolve turns a path inside the tree into a host path the way a chroot
//     would: ".." stops at the root and symlinks, absolute or relative, are
//     followed inside Root, so no path or symlink leads out of it.
//   - A Selection is what one llb.CopyAction reads: its Src paths expanded
//     (wildcards, "**", the "/./" pivot of --parents) into Matches, and each
//     Match walked, with excluded paths left out, into Entries. The copy
//     itself (solver/ops/fileop) and the content checksum (cache/contenthash)
//     both consume the same Selection, so a cache key covers exactly what is
//     copied.
//
// One use:
//
//	sel, err := local.Select(ctx, local.Source{Root: dir, Excludes: patterns, Context: true}, action)
//	for i := range sel.Matches {
//		err = sel.Walk(ctx, &sel.Matches[i], func(e local.Entry) error { ...; return nil })
//	}
//
// A walk never follows a symlink below a Match: it reports the link. Only a
// Match itself is followed, and only with CopyAction.FollowSymlinks.
package local

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// Source is a tree files are copied from.
type Source struct {
	// Root is the host directory holding the tree.
	Root string
	// Excludes are .dockerignore patterns for the build context, nil for
	// stages.
	Excludes []string
	// Context marks the build context: copied files are owned by 0:0
	// unless the copy sets an owner. Files copied from a stage keep theirs.
	Context bool
}

// Clean turns a path inside a tree into a slash path relative to its root,
// "." for the root itself. Leading "/" and ".." components that would climb
// above the root are dropped.
func Clean(p string) string {
	p = path.Clean("/" + filepath.ToSlash(p))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Resolve returns the host path of p inside root, following every symlink
// the way a chroot to root would. The result is always root or below it.
func Resolve(root, p string) (string, error) {
	rel := Clean(p)
	if rel == "." {
		return filepath.Clean(root), nil
	}
	host, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", p, root, err)
	}
	return host, nil
}

// ResolveParent resolves the parent directory of p like Resolve and joins
// the last component of p to it unresolved, so a symlink named by p is
// itself returned, not its target. For the root it returns root.
func ResolveParent(root, p string) (string, error) {
	rel := Clean(p)
	if rel == "." {
		return filepath.Clean(root), nil
	}
	dir, base := path.Split(rel)
	parent, err := Resolve(root, dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, base), nil
}

// RelTo returns host relative to root as a slash path ("." for root); host
// must be root or below it.
func RelTo(root, host string) string {
	root = filepath.Clean(root)
	if host == root {
		return "."
	}
	return filepath.ToSlash(strings.TrimPrefix(host, root+string(os.PathSeparator)))
}
