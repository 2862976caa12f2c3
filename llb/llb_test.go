package llb

import (
	"strings"
	"testing"
)

func img(ref string) *Vertex {
	return &Vertex{Op: &SourceOp{Source: SourceImage, Ref: ref}}
}

func run(in *Vertex, cmd string, name string) *Vertex {
	return &Vertex{
		Op:     &ExecOp{Args: []string{"/bin/sh", "-c", cmd}, Cwd: "/", Mounts: []Mount{{Type: MountBind, Dest: "/", Input: 0}}},
		Inputs: []*Vertex{in},
		Meta:   Meta{Name: name},
	}
}

func TestDigestIgnoresMeta(t *testing.T) {
	a := run(img("busybox"), "true", "one")
	b := run(img("busybox"), "true", "two")
	if a.Digest() != b.Digest() {
		t.Fatalf("digests differ only by meta: %s vs %s", a.Digest(), b.Digest())
	}
	c := run(img("busybox"), "false", "one")
	if a.Digest() == c.Digest() {
		t.Fatal("different commands share a digest")
	}
	d := run(img("alpine"), "true", "one")
	if a.Digest() == d.Digest() {
		t.Fatal("different inputs share a digest")
	}
}

func TestDefinitionDedupAndOrder(t *testing.T) {
	left := run(img("busybox"), "echo a", "a")
	right := run(img("busybox"), "echo b", "b")
	merge := &Vertex{
		Op:     &FileOp{Base: 0, Actions: []FileAction{{Copy: &CopyAction{Source: 1, Src: []string{"/x"}, Dest: "/x"}}}},
		Inputs: []*Vertex{left, right},
	}
	d, err := NewDefinition(merge)
	if err != nil {
		t.Fatal(err)
	}
	// busybox appears once although two vertices reference their own copy.
	if len(d.Vertices) != 4 {
		t.Fatalf("got %d vertices, want 4", len(d.Vertices))
	}
	if left.Inputs[0] != right.Inputs[0] {
		t.Fatal("equal sources were not merged")
	}
	pos := map[*Vertex]int{}
	for i, v := range d.Vertices {
		pos[v] = i
		for _, in := range v.Inputs {
			if in != nil && pos[in] >= i {
				t.Fatalf("vertex %d comes before its input", i)
			}
		}
	}
	if d.Root != merge {
		t.Fatal("root is not last vertex")
	}
	var sb strings.Builder
	if err := d.Format(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `v3 file "" inputs=[v1 v2]`) {
		t.Fatalf("format:\n%s", sb.String())
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    *Vertex
		want string
	}{
		{"no op", &Vertex{}, "no op"},
		{"exec without root", &Vertex{Op: &ExecOp{Args: []string{"x"}}}, "no root mount"},
		{"copy source out of range", &Vertex{Op: &FileOp{Base: -1, Actions: []FileAction{{Copy: &CopyAction{Source: 3}}}}}, "out of range"},
		{"two kinds", &Vertex{Op: &FileOp{Base: -1, Actions: []FileAction{{Rm: &RmAction{}, Mkdir: &MkdirAction{}}}}}, "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDefinition(tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}
