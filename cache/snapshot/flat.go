package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/mount"
)

// maxLowers is the most lower directories the kernel stacks in one overlay
// (OVL_MAX_STACK).
const maxLowers = 500

// flatStep is how many layers one flattened lower stands for: a chain
// deeper than maxLowers mounts its newest layers as they are and the rest
// as one flattened copy, made once per flatStep layers of depth and shared
// by every snapshot above it.
const flatStep = 256

// FlatPrefix names the committed snapshots that hold a flattened copy of a
// chain: "flat-" and the name of the chain's newest snapshot. They are
// ordinary snapshots without a parent; a prune keeps one as long as it
// keeps that snapshot, and a mount makes a missing one again.
const FlatPrefix = "flat-"

// lowerDirs is the lower directories of a chain, nearest first: its
// snapshots' fs dirs, or, for an overlay chain deeper than the kernel
// stacks, the newest ones and a flattened copy of the rest.
func (s *snapshotter) lowerDirs(ctx context.Context, c chain) ([]string, error) {
	n := len(c.ids)
	if s.drv.name() != "overlay" || n <= maxLowers {
		return s.chainDirs(c.ids), nil
	}
	k := (n - (maxLowers - 1) + flatStep - 1) / flatStep * flatStep
	flat, err := s.flat(ctx, chain{ids: c.ids[n-k:], names: c.names[n-k:]})
	if err != nil {
		return nil, err
	}
	return append(s.chainDirs(c.ids[:n-k]), flat), nil
}

// flat returns the fs dir of the flattened copy of chain c, making it if
// it is missing: the chain mounted read-only and copied, as an active
// snapshot committed under its flat name. Two makers at once both copy;
// the second commit finds the first's and drops its own.
func (s *snapshotter) flat(ctx context.Context, c chain) (string, error) {
	name := FlatPrefix + c.names[0]
	if r, err := s.record(name); err == nil {
		return fsDir(s.dir(r.ID)), nil
	}
	lowers, err := s.lowerDirs(ctx, c)
	if err != nil {
		return "", err
	}
	key := "flattening-" + newID()
	if _, err := s.create(ctx, KindActive, key, ""); err != nil {
		return "", err
	}
	r, err := s.record(key)
	if err == nil {
		err = s.copyMerged(lowers, s.dir(r.ID))
	}
	if err == nil {
		err = s.Commit(ctx, name, key)
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			err = s.Remove(ctx, key) // another maker's copy stands
		} else if err == nil {
			return fsDir(s.dir(r.ID)), nil
		}
	}
	if err != nil {
		_ = s.Remove(context.WithoutCancel(ctx), key)
		return "", fmt.Errorf("flatten %d layers: %w", len(c.ids), err)
	}
	return s.flat(ctx, c)
}

// copyMerged copies the merged tree of lowers (nearest first) into the fs
// dir of the snapshot directory dir, mounting them under dir.
func (s *snapshotter) copyMerged(lowers []string, dir string) error {
	m := mount.Mount{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}
	if len(lowers) > 1 {
		opts := append(append([]string{}, overlayOptions...), "lowerdir="+strings.Join(lowers, ":"))
		m = mount.Mount{Type: "overlay", Source: "overlay", Options: opts}
	}
	return mount.WithTemp(dir, []mount.Mount{m}, func(root string) error {
		return CopyTree(root, fsDir(dir))
	})
}
