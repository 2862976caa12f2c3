package snapshot

import (
	"strings"

	"github.com/strata-build/strata/mount"
)

// DiffMounts turns the read-only view of a committed overlay snapshot into
// a mount whose upperdir is the snapshot's own directory (the first
// lowerdir), which holds exactly its diff; a differ reads only that
// directory. Other mounts (a bind of a snapshot without parent, the naive
// snapshotter's) are returned as they are.
func DiffMounts(view []mount.Mount) []mount.Mount {
	if len(view) != 1 || view[0].Type != "overlay" {
		return view
	}
	for _, o := range view[0].Options {
		if strings.HasPrefix(o, "upperdir=") {
			return view
		}
	}
	for _, o := range view[0].Options {
		if dirs, ok := strings.CutPrefix(o, "lowerdir="); ok {
			first, rest, _ := strings.Cut(dirs, ":")
			opts := []string{"upperdir=" + first}
			if rest != "" {
				opts = append(opts, "lowerdir="+rest)
			}
			return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts, Dir: view[0].Dir}}
		}
	}
	return view
}
