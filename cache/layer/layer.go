// Package layer turns snapshots into OCI layer tars and back.
//
// Vocabulary:
//
//   - A diff is what an active snapshot (the upper) changed relative to its
//     parent (the lower). WriteDiff writes it as an uncompressed layer tar.
//   - A whiteout is the tar entry ".wh.<name>" that deletes <name> from the
//     layers below; the opaque marker ".wh..wh..opq" in a directory hides
//     everything the layers below had in it.
//   - The diffID is the sha256 of the uncompressed tar (it goes into an image
//     config's rootfs); the blob is the compressed tar that a manifest lists.
//
// One layer's way through strata:
//
//	n, err := layer.WriteDiff(ctx, pw, parentMounts, mounts, layer.DiffOptions{})
//	diffID, blob, err := layer.Compress(pr, blobFile) // both digests, one pass
//	// ... later, in another store:
//	diffID, err = layer.Apply(ctx, childMounts, blobReader)
//
// The tars are deterministic: entries in path order (a directory before its
// contents, siblings by name), PAX headers carrying only mode, owner, size,
// whole-second mtime, link target, device numbers and xattrs, and hard links
// inside a layer written as links. Apply confines every entry to the root it
// unpacks into.
package layer

import (
	"errors"
	"time"
)

// DiffOptions tune WriteDiff.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps every mtime later than it to it.
	SourceDateEpoch *time.Time
	// TempDir holds the mount point of a lower that must be mounted to be
	// compared (default os.TempDir()); put it where a sweep will find it.
	TempDir string
}

// ErrEscape is wrapped by Apply's error for an entry whose path, parent
// symlinks or hard-link target would leave the root.
var ErrEscape = errors.New("escapes the root")

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
	overlayXattrs  = "trusted.overlay."
	paxXattr       = "SCHILY.xattr."
)
