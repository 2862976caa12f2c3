package layer

import (
	"maps"
	"slices"
	"strings"

	"github.com/strata-build/strata/internal/xattr"
)

// xattrs returns the extended attributes of p (not following a symlink),
// without overlayfs's own.
func xattrs(p string) (map[string]string, error) {
	all, err := xattr.All(p)
	if err != nil {
		return nil, err
	}
	maps.DeleteFunc(all, func(name, _ string) bool { return strings.HasPrefix(name, overlayXattrs) })
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

func getXattr(p, name string) ([]byte, error) { return xattr.Get(p, name) }

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
