package dockerfile

import (
	"github.com/strata-build/strata/llb"
)

// linked reports whether a COPY or ADD is converted as a linked layer: the
// copy made on scratch, then merged onto the stage root. As in BuildKit,
// --link with --chmod falls back to a plain copy onto the stage root.
func (cs copySpec) linked() bool { return cs.link && cs.chmod == "" }

// linkMerge stacks copy, a FileOp made on scratch, onto root. The merge
// shows as "LINK <instruction>" under the same step number as the copy, and
// has its own step ID so a miss of either is explained on its own.
func (c *converter) linkMerge(s *stage, root, copy *llb.Vertex, cmd command) *llb.Vertex {
	if s.cmdTotal != 0 {
		s.cmdIndex-- // the copy and its merge are one step
	}
	name := s.prefix("LINK "+c.displayName(s, cmd), cmd.onBuild)
	return &llb.Vertex{
		Op:     &llb.MergeOp{},
		Inputs: []*llb.Vertex{root, copy},
		Meta:   c.meta(s, name, cmd.Location(), cmd.step+".link"),
	}
}
