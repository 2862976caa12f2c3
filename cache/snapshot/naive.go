package snapshot

import (
	"fmt"
	"os"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/mount"
)

// NewNaive returns the fallback snapshotter: every active snapshot is a full
// copy of its parent's tree in fs/, mounted with a bind mount; a view binds
// its parent's tree read-only without copying.
func NewNaive(root string, db *metadata.DB) (Snapshotter, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshotter root %s: %w", root, err)
	}
	return newSnapshotter(root, db, naiveDriver{})
}

type naiveDriver struct{}

func (naiveDriver) name() string { return "naive" }

func (naiveDriver) create(dir string, k Kind, chain []string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(fsDir(dir), 0o755); err != nil {
		return err
	}
	if k == KindView || len(chain) == 0 {
		return nil
	}
	return CopyTree(chain[0], fsDir(dir))
}

func (naiveDriver) mounts(dir string, k Kind, chain []string) []mount.Mount {
	src, opt := fsDir(dir), "rw"
	if k == KindView {
		opt = "ro"
		if len(chain) > 0 {
			src = chain[0]
		}
	}
	return []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind", opt}}}
}
