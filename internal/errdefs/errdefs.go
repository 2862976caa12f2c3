// Package errdefs is strata's one vocabulary for the kinds of failure that
// callers in other packages act on. A package's error wraps one of these
// sentinels with a message that names the thing:
//
//	fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound) // image "x": not found
//
// and a caller tests the kind, whichever store it came from:
//
//	if errors.Is(err, errdefs.ErrNotFound) { ... }
//
// A condition only one package's callers care about (a snapshot that has
// children) keeps its own sentinel in that package.
package errdefs

import "errors"

var (
	// ErrNotFound is wrapped by the errors of lookups of a thing that is
	// not there: a blob, an image name, a snapshot, a mount source.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists is wrapped by the errors of creating a thing under a
	// name that is taken.
	ErrAlreadyExists = errors.New("already exists")
)
