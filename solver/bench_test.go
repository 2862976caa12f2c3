package solver

import (
	"context"
	"fmt"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/llb"
)

// benchOp is an op with a fixed key whose result is its name.
type benchOp struct{ name string }

type benchResult string

func (r benchResult) ID() string { return string(r) }

func (o benchOp) CacheMap(context.Context) (*CacheMap, error) {
	return &CacheMap{Digest: digest.FromString(o.name), Components: []Component{{Name: "command", Value: o.name}}}, nil
}

func (o benchOp) Exec(context.Context, []Result) (Result, error) { return benchResult(o.name), nil }

// layeredGraph has layers of width vertices, each reading two vertices of the
// layer below, and one root reading the top layer: layers*width+1 vertices.
func layeredGraph(layers, width int) *llb.Vertex {
	var below []*llb.Vertex
	for l := range layers {
		var cur []*llb.Vertex
		for i := range width {
			v := &llb.Vertex{
				Op:   &llb.ExecOp{Args: []string{fmt.Sprintf("step %d.%d", l, i)}, Mounts: []llb.Mount{{Dest: "/"}}},
				Meta: llb.Meta{Name: fmt.Sprintf("[%d/%d] RUN step %d", l+1, layers, i), StepID: fmt.Sprintf("%d/%d", l, i)},
			}
			if below != nil {
				v.Inputs = []*llb.Vertex{below[i], below[(i+1)%width]}
			}
			cur = append(cur, v)
		}
		below = cur
	}
	return &llb.Vertex{Op: &llb.ExecOp{Args: []string{"root"}, Mounts: []llb.Mount{{Dest: "/"}}}, Inputs: below, Meta: llb.Meta{Name: "root"}}
}

func benchSolver(store CacheStore) *Solver {
	return New(Options{
		Resolve: func(v *llb.Vertex) (Op, error) { return benchOp{name: v.Op.(*llb.ExecOp).Args[0]}, nil },
		Cache:   store,
	})
}

// BenchmarkSolveCached1000 solves a cached 1,000-vertex graph: every vertex's
// key is computed, only the root is looked up.
func BenchmarkSolveCached1000(b *testing.B) {
	root := layeredGraph(37, 27) // 999 + root
	store := newMemStore()
	s := benchSolver(store)
	if _, err := s.Solve(b.Context(), root); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Solve(b.Context(), root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSolveUncached1000 runs every vertex of a 1,000-vertex graph.
func BenchmarkSolveUncached1000(b *testing.B) {
	root := layeredGraph(37, 27)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := benchSolver(newMemStore()).Solve(b.Context(), root); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLayeredGraphSolves(t *testing.T) {
	store := newMemStore()
	root := layeredGraph(37, 27)
	r, err := benchSolver(store).Solve(t.Context(), root)
	if err != nil || r.ID() != "root" {
		t.Fatalf("solve = %v, %v", r, err)
	}
	if n := len(store.results); n != 37*27+1 {
		t.Errorf("%d results saved, want %d", n, 37*27+1)
	}
}
