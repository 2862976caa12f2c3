package local

import (
	"fmt"
	"strings"
)

// NotFoundError says a copy source does not exist in its tree (or is hidden
// by .dockerignore).
type NotFoundError struct {
	// Path is the source as the copy named it.
	Path string
	// Looked are the paths, relative to the tree root, that were tried:
	// the cleaned source, a symlink's target, or a wildcard pattern.
	Looked []string
	// Excluded is set when the path exists but .dockerignore hides it.
	Excluded bool
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "copy source %q: not found", e.Path)
	if len(e.Looked) > 0 {
		fmt.Fprintf(&b, ": looked for /%s", strings.Join(e.Looked, ", /"))
	}
	if e.Excluded {
		b.WriteString(" (excluded by .dockerignore)")
	}
	return b.String()
}
