package llb

import (
	"strings"
	"testing"
)

func linkCopy(src string) *Vertex {
	ctx := &Vertex{Op: &SourceOp{Source: SourceLocal, Ref: "context"}}
	return &Vertex{
		Op:     &FileOp{Base: -1, Actions: []FileAction{{Copy: &CopyAction{Source: 0, Src: []string{src}, Dest: "/app/", CreateDestPath: true}}}},
		Inputs: []*Vertex{ctx},
	}
}

func merge(ins ...*Vertex) *Vertex {
	return &Vertex{Op: &MergeOp{}, Inputs: ins, Meta: Meta{Name: "LINK COPY"}}
}

func TestMergeDigestCoversInputsInOrder(t *testing.T) {
	a := merge(img("busybox"), linkCopy("/a"))
	seen := map[string]string{a.Digest().String(): "busybox + copy /a"}
	for name, v := range map[string]*Vertex{
		"other base":     merge(img("alpine"), linkCopy("/a")),
		"other copy":     merge(img("busybox"), linkCopy("/b")),
		"swapped":        merge(linkCopy("/a"), img("busybox")),
		"third input":    merge(img("busybox"), linkCopy("/a"), linkCopy("/b")),
		"scratch bottom": merge(nil, linkCopy("/a")),
	} {
		if prev, ok := seen[v.Digest().String()]; ok {
			t.Errorf("%s has the digest of %s: %s", name, prev, v.Digest())
		}
		seen[v.Digest().String()] = name
	}
	same := merge(img("busybox"), linkCopy("/a"))
	same.Meta.Name = "another name"
	if same.Digest() != a.Digest() {
		t.Fatalf("equal merges differ: %s vs %s", same.Digest(), a.Digest())
	}
	// The copy below a merge is keyed without the base it lands on.
	if linkCopy("/a").Digest() != a.Inputs[1].Digest() {
		t.Fatal("copy digest depends on where it was built")
	}
}

func TestMergeDefinition(t *testing.T) {
	m := merge(img("busybox"), linkCopy("/a"))
	d, err := NewDefinition(m)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := d.Format(&sb); err != nil {
		t.Fatal(err)
	}
	want := "v3 merge \"LINK COPY\" inputs=[v0 v2]\n  {}\n"
	if !strings.HasSuffix(sb.String(), want) {
		t.Fatalf("format:\n%s\nwant suffix:\n%s", sb.String(), want)
	}
	for _, n := range []int{0, 1} {
		ins := []*Vertex{img("busybox"), linkCopy("/a")}[:n]
		_, err := NewDefinition(merge(ins...))
		if err == nil || !strings.Contains(err.Error(), "merge op \"LINK COPY\" needs at least 2 inputs") {
			t.Fatalf("%d inputs: got %v", n, err)
		}
	}
}
