package llb

// MergeOp stacks its inputs, bottom to top, into one tree: Inputs[0] is the
// bottom, and each later input's files are laid over what lies below, as if
// its layer were unpacked on top (a file replaces a file of the same path, a
// directory takes the upper's metadata and keeps the lower's other entries).
// A nil input is scratch and adds nothing.
//
// COPY --link is a FileOp on scratch merged onto the stage root:
//
//	copy := &Vertex{Op: &FileOp{Base: -1, Actions: ...}, Inputs: []*Vertex{ctx}}
//	out := &Vertex{Op: &MergeOp{}, Inputs: []*Vertex{stageRoot, copy}}
//
// The copy's digest does not depend on the stage root, so a changed base
// leaves the copy cached and only the merge runs again; the merge's digest
// covers its inputs, in order, like every other op's.
type MergeOp struct{}

func (*MergeOp) isOp()        {}
func (*MergeOp) Kind() string { return "merge" }
