package ops

import (
	"context"
	"fmt"
	"os"

	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/solver"
)

// localOp is the build context: read in place, never cached itself. Steps
// that copy from it key on the content they select (see fileOp).
type localOp struct {
	w  *Worker
	op *llb.SourceOp
}

func (o *localOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	var ex []string
	if o.op.Local != nil {
		ex = o.op.Local.ExcludePatterns
	}
	return &solver.CacheMap{Digest: opDigest("local", struct {
		Ref      string
		Excludes []string
	}{o.op.Ref, ex}), NoCache: true}, nil
}

func (o *localOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	fi, err := os.Stat(o.w.ContextDir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", o.w.ContextDir)
	}
	r := &Ref{Dir: o.w.ContextDir}
	if o.op.Local != nil {
		r.Excludes = o.op.Local.ExcludePatterns
	}
	return r, nil
}
