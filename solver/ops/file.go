package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
	"github.com/strata-build/strata/solver/ops/fileop"
)

// fileOp applies COPY/ADD/WORKDIR actions on a writable snapshot of its base.
// A copy source is keyed by the content it selects, so a rebuilt stage or an
// edited context only misses when the copied files changed.
type fileOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.FileOp

	mu   sync.Mutex
	sums map[int]solver.ContentSum // what each content-keyed input's copies read
}

func (o *fileOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	cm := &solver.CacheMap{Digest: opDigest("file", o.op), Deps: make([]solver.Dep, len(o.v.Inputs))}
	for i := range o.v.Inputs {
		if i == o.op.Base {
			continue
		}
		var acts []*llb.CopyAction
		for _, a := range o.op.Actions {
			if a.Copy != nil && a.Copy.Source == i {
				acts = append(acts, a.Copy)
			}
		}
		if len(acts) == 0 {
			continue
		}
		cm.Deps[i].Content = func(ctx context.Context, r solver.Result) (solver.ContentSum, error) {
			sum, err := o.w.checksum(ctx, refOf(r), acts)
			if err == nil {
				o.keepSum(i, sum)
			}
			return sum, err
		}
	}
	return cm, nil
}

// checksum sums what the copy actions select from ref. The context is
// summed through the checksum cache (files keyed by inode, size and times);
// a committed snapshot never changes, so its sum is computed once and kept
// by snapshot name ("copy-sum.v2": the Files of v1 sums were keyed by
// destination path).
func (w *Worker) checksum(ctx context.Context, ref *Ref, acts []*llb.CopyAction) (solver.ContentSum, error) {
	var memo string
	if ref.Dir == "" && ref.Snapshot != "" {
		memo = ref.Snapshot + "\x00" + opDigest("copy-sum.v2", acts).String()
		if b, err := w.Records.Sum(memo); err != nil {
			return solver.ContentSum{}, err
		} else if b != nil {
			var sum solver.ContentSum
			if err := json.Unmarshal(b, &sum); err == nil {
				return sum, nil
			}
		}
	}
	sum := solver.ContentSum{Files: map[string]digest.Digest{}}
	var parts []string
	if err := ref.Ready(ctx); err != nil {
		return solver.ContentSum{}, err
	}
	err := w.withView(ctx, ref, func(root string) error {
		src := fileop.Source{Root: root, Excludes: ref.Excludes, Context: ref.Dir != ""}
		checksums := w.Checksums
		if ref.Dir == "" {
			checksums = nil // a view's temporary path would only grow the cache
		}
		for _, a := range acts {
			s, err := checksums.Checksum(ctx, src, a)
			if err != nil {
				return err
			}
			parts = append(parts, s.Digest.String())
			for f, d := range s.Files {
				sum.Files[f] = d
			}
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sort.Strings(parts)
	sum.Digest = digest.FromString(strings.Join(parts, "\n"))
	if memo != "" {
		b, err := json.Marshal(sum)
		if err != nil {
			return sum, err
		}
		if err := w.Records.SaveSum(memo, b); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

func (o *fileOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	parent := ""
	if o.op.Base >= 0 {
		ref, err := ready(ctx, inputs[o.op.Base])
		if err != nil {
			return nil, err
		}
		parent = ref.Snapshot
	}
	active := randomID("file-")
	mounts, err := o.w.Snapshotter.Prepare(ctx, active, parent)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	reuse, release, err := o.reuse(ctx, parent, mounts)
	if err != nil {
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, err
	}
	defer release()
	err = mount.WithTemp(o.w.TempDir, mounts, func(dest string) error {
		for _, a := range o.op.Actions {
			if err := o.apply(ctx, dest, a, inputs, reuse); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && reuse != nil {
		err = reuse.Link() // into the unmounted upper dir
	}
	if err != nil {
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, err
	}
	ref, err := o.w.commit(ctx, active)
	if err != nil {
		return nil, err
	}
	if err := o.saveReuse(parent, ref.Snapshot); err != nil {
		return nil, err
	}
	return ref, nil
}

func (o *fileOp) apply(ctx context.Context, dest string, a llb.FileAction, inputs []solver.Result, reuse *fileop.Reuse) error {
	switch {
	case a.Copy != nil:
		ref, err := ready(ctx, inputs[a.Copy.Source])
		if err != nil {
			return err
		}
		return o.w.withView(ctx, ref, func(root string) error {
			src := fileop.Source{Root: root, Excludes: ref.Excludes, Context: ref.Dir != ""}
			return fileop.CopyWith(ctx, src, dest, a.Copy, fileop.CopyOptions{Reuse: reuse})
		})
	case a.Mkdir != nil:
		return fileop.Mkdir(ctx, dest, a.Mkdir)
	case a.Mkfile != nil:
		return fileop.Mkfile(ctx, dest, a.Mkfile)
	case a.Rm != nil:
		return fileop.Rm(ctx, dest, a.Rm)
	}
	return fmt.Errorf("file action has no kind")
}
