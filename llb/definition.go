package llb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// Definition is a validated graph: its vertices deduplicated by digest and
// sorted so that every vertex comes after its inputs. Root is the last one.
type Definition struct {
	Vertices []*Vertex
	Root     *Vertex
}

// NewDefinition validates the graph below root. Vertices with equal digests
// are merged: every input edge points at the first such vertex seen.
func NewDefinition(root *Vertex) (*Definition, error) {
	if root == nil {
		return &Definition{}, nil
	}
	d := &Definition{}
	seen := map[digest.Digest]*Vertex{}
	var visit func(v *Vertex, path map[*Vertex]bool) (*Vertex, error)
	visit = func(v *Vertex, path map[*Vertex]bool) (*Vertex, error) {
		if path[v] {
			return nil, errors.New("llb: graph has a cycle")
		}
		if err := validate(v); err != nil {
			return nil, err
		}
		if u, ok := seen[v.Digest()]; ok {
			return u, nil
		}
		path[v] = true
		for i, in := range v.Inputs {
			if in == nil {
				continue
			}
			u, err := visit(in, path)
			if err != nil {
				return nil, err
			}
			v.Inputs[i] = u
		}
		delete(path, v)
		seen[v.Digest()] = v
		d.Vertices = append(d.Vertices, v)
		return v, nil
	}
	r, err := visit(root, map[*Vertex]bool{})
	if err != nil {
		return nil, err
	}
	d.Root = r
	return d, nil
}

func validate(v *Vertex) error {
	if v.Op == nil {
		return fmt.Errorf("llb: vertex %q has no op", v.Meta.Name)
	}
	inRange := func(i int, what string) error {
		if i < -1 || i >= len(v.Inputs) {
			return fmt.Errorf("llb: %s op %q: %s input %d out of range (%d inputs)", v.Op.Kind(), v.Meta.Name, what, i, len(v.Inputs))
		}
		return nil
	}
	switch op := v.Op.(type) {
	case *SourceOp:
		if len(v.Inputs) != 0 {
			return fmt.Errorf("llb: source op %q has inputs", v.Meta.Name)
		}
		if op.Ref == "" {
			return fmt.Errorf("llb: source op %q has no ref", v.Meta.Name)
		}
	case *ExecOp:
		if len(op.Args) == 0 {
			return fmt.Errorf("llb: exec op %q has no args", v.Meta.Name)
		}
		if len(op.Mounts) == 0 || op.Mounts[0].Dest != "/" {
			return fmt.Errorf("llb: exec op %q has no root mount", v.Meta.Name)
		}
		for _, m := range op.Mounts {
			if err := inRange(m.Input, "mount "+m.Dest); err != nil {
				return err
			}
		}
	case *FileOp:
		if err := inRange(op.Base, "base"); err != nil {
			return err
		}
		for _, a := range op.Actions {
			n := 0
			for _, set := range []bool{a.Copy != nil, a.Mkdir != nil, a.Mkfile != nil, a.Rm != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("llb: file op %q: an action must have exactly one kind", v.Meta.Name)
			}
			if a.Copy != nil {
				if err := inRange(a.Copy.Source, "copy source"); err != nil {
					return err
				}
			}
		}
	case *MergeOp:
		if len(v.Inputs) < 2 {
			return fmt.Errorf("llb: merge op %q needs at least 2 inputs, has %d", v.Meta.Name, len(v.Inputs))
		}
	default:
		return fmt.Errorf("llb: unknown op %T", v.Op)
	}
	return nil
}

// Format prints the definition one vertex per line block, inputs by index
// into the printed order, for golden tests and debugging.
func (d *Definition) Format(w io.Writer) error {
	index := map[*Vertex]int{}
	for i, v := range d.Vertices {
		index[v] = i
		ins := make([]string, len(v.Inputs))
		for j, in := range v.Inputs {
			if in == nil {
				ins[j] = "scratch"
			} else {
				ins[j] = fmt.Sprintf("v%d", index[in])
			}
		}
		op, err := json.Marshal(v.Op)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "v%d %s %q inputs=[%s]\n  %s\n", i, v.Op.Kind(), v.Meta.Name, strings.Join(ins, " "), op); err != nil {
			return err
		}
	}
	return nil
}
