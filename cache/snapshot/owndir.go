package snapshot

import (
	"strings"

	"github.com/strata-build/strata/mount"
)

// OverlayDir returns the host directory that holds an overlay snapshot's own
// entries, read from its mounts: the upperdir of an active snapshot, or the
// first lowerdir of a view over a committed snapshot with a parent (which is
// that committed snapshot's own directory). ok is false for anything else:
// bind mounts (a snapshot without parent, the naive snapshotter) have no
// separate directory of changes.
//
// A committed snapshot's directory is immutable: a caller may read it and
// hard-link files out of it into an active snapshot's upper dir (overlay
// copy-up never writes through to a lower inode), but must never write to it.
// Writing into an upper dir directly is sound only for new names that the
// mounted overlay has not been asked to create.
func OverlayDir(ms []mount.Mount) (dir string, ok bool) {
	if len(ms) != 1 || ms[0].Type != "overlay" {
		return "", false
	}
	m := ms[0]
	var lower string
	for _, o := range m.Options {
		if v, found := strings.CutPrefix(o, "upperdir="); found {
			return m.Path(v), true
		}
		if v, found := strings.CutPrefix(o, "lowerdir="); found {
			lower, _, _ = strings.Cut(v, ":")
		}
	}
	if lower == "" {
		return "", false
	}
	return m.Path(lower), true
}
