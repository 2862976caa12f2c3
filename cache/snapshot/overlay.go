package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/mount"
)

// overlayOptions keep an upper dir a plain record of the changes: no index,
// no redirects and no metadata-only copy-ups, so a layer diff can read it.
var overlayOptions = []string{"index=off", "redirect_dir=off", "metacopy=off"}

// NewOverlay returns a snapshotter that stacks snapshots with overlayfs:
// each snapshot directory holds fs/ (its upper dir) and work/. It fails with
// a clear error when overlayfs is unusable at root.
func NewOverlay(root string, db *metadata.DB) (Snapshotter, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("overlay snapshotter at %s: overlayfs mounts need root", root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshotter root %s: %w", root, err)
	}
	// A root the overlay driver already owns was checked when it was
	// claimed; the check mounts, so it is not repeated on every open.
	if b, err := os.ReadFile(filepath.Join(root, "driver")); err != nil || strings.TrimSpace(string(b)) != "overlay" {
		if err := checkOverlay(root); err != nil {
			return nil, fmt.Errorf("overlay snapshotter at %s: overlayfs is unusable: %w", root, err)
		}
	}
	return newSnapshotter(root, db, overlayDriver{})
}

// checkOverlay mounts a two-layer overlay with an upper dir on a scratch
// directory under root and unmounts it again.
func checkOverlay(root string) error {
	tmp, err := os.MkdirTemp(root, "check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o700); err != nil {
			return err
		}
	}
	opts := append(append([]string{}, overlayOptions...),
		"lowerdir="+filepath.Join(tmp, "l1")+":"+filepath.Join(tmp, "l2"),
		"upperdir="+filepath.Join(tmp, "u"), "workdir="+filepath.Join(tmp, "w"))
	m := filepath.Join(tmp, "m")
	if err := unix.Mount("overlay", m, "overlay", 0, strings.Join(opts, ",")); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return unix.Unmount(m, unix.MNT_DETACH)
}

type overlayDriver struct{}

func (overlayDriver) name() string { return "overlay" }

func (overlayDriver) create(dir string, k Kind, chain []string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(fsDir(dir), 0o755); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(dir, "work"), 0o700)
}

func (overlayDriver) mounts(dir string, k Kind, chain []string) []mount.Mount {
	switch {
	case k == KindView && len(chain) == 0:
		return []mount.Mount{{Type: "bind", Source: fsDir(dir), Options: []string{"rbind", "ro"}}}
	case k == KindView && len(chain) == 1:
		return []mount.Mount{{Type: "bind", Source: chain[0], Options: []string{"rbind", "ro"}}}
	case k == KindView:
		opts := append(append([]string{}, overlayOptions...), "lowerdir="+strings.Join(chain, ":"))
		return shorten([]mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, filepath.Dir(dir))
	case len(chain) == 0:
		return []mount.Mount{{Type: "bind", Source: fsDir(dir), Options: []string{"rbind", "rw"}}}
	}
	opts := append(append([]string{}, overlayOptions...),
		"lowerdir="+strings.Join(chain, ":"),
		"upperdir="+fsDir(dir),
		"workdir="+filepath.Join(dir, "work"))
	return shorten([]mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, filepath.Dir(dir))
}

// maxMountData is how much of the kernel's one-page mount data the options
// may take before paths are made relative.
const maxMountData = 3500

// shorten rewrites an overlay mount whose options are too long for the
// kernel into paths relative to base (the snapshots directory), so a chain
// of well over a hundred layers still mounts.
func shorten(ms []mount.Mount, base string) []mount.Mount {
	if len(ms) != 1 || ms[0].Type != "overlay" || len(strings.Join(ms[0].Options, ",")) <= maxMountData {
		return ms
	}
	m := ms[0]
	m.Dir = base
	opts := make([]string, len(m.Options))
	for i, o := range m.Options {
		k, v, ok := strings.Cut(o, "=")
		if ok && (k == "lowerdir" || k == "upperdir" || k == "workdir") {
			parts := strings.Split(v, ":")
			for j, p := range parts {
				if rel, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(rel, "..") {
					parts[j] = rel
				}
			}
			o = k + "=" + strings.Join(parts, ":")
		}
		opts[i] = o
	}
	m.Options = opts
	return []mount.Mount{m}
}
