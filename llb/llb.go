// Package llb is strata's build graph as plain data.
//
// A build is a DAG of Vertex values. Each Vertex holds one Op (SourceOp,
// ExecOp, FileOp or MergeOp), the vertices whose single output it consumes (Inputs),
// and Meta that describes it for people (names, Dockerfile locations) but is
// never part of its identity.
//
// A vertex's Digest covers its op's key fields and the digests of its
// inputs, so two vertices with the same digest produce the same result and
// the solver runs them once. NewDefinition validates a graph rooted at one
// vertex, deduplicates it by digest and sorts it topologically; Format prints
// it for golden tests.
//
// Every vertex has exactly one output: a filesystem tree. For a SourceOp it is
// the image rootfs or the local directory; for an ExecOp it is the root mount
// after the command ran; for a FileOp it is the base input after the actions;
// for a MergeOp it is its inputs stacked bottom to top (COPY --link).
// A nil *Vertex stands for scratch, the empty tree.
package llb

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Op is one of *SourceOp, *ExecOp, *FileOp, *MergeOp.
type Op interface {
	isOp()
	// Kind names the op type for printing and digests.
	Kind() string
}

// Vertex is one node of the build graph.
type Vertex struct {
	Op     Op
	Inputs []*Vertex // a nil entry is scratch
	Meta   Meta

	dgst digest.Digest
}

// Meta describes a vertex for people and for cache policy; it is never hashed.
type Meta struct {
	// Name is what progress shows, e.g. "[build 2/4] RUN make".
	Name string
	// Locations are the Dockerfile ranges the vertex came from.
	Locations []Location
	// IgnoreCache forces the vertex to run even when its key is cached.
	IgnoreCache bool
	// StepID identifies the step across builds (e.g. "build/3"), so a cache
	// miss can be explained against the previous build of the same step.
	StepID string
	// BuildArgs names the ExecOp environment variables that come from build
	// arguments, so a miss can say "build arg X changed" rather than "env".
	BuildArgs []string
}

// Location is a range of lines in a source file, 1-based and inclusive.
type Location struct {
	File      string
	StartLine int
	EndLine   int
}

func (l Location) String() string {
	if l.StartLine == l.EndLine {
		return fmt.Sprintf("%s:%d", l.File, l.StartLine)
	}
	return fmt.Sprintf("%s:%d-%d", l.File, l.StartLine, l.EndLine)
}

// SourceKind says where a SourceOp takes its tree from.
type SourceKind string

const (
	SourceImage SourceKind = "docker-image"
	SourceLocal SourceKind = "local"
	SourceHTTP  SourceKind = "https"
	SourceGit   SourceKind = "git"
)

// SourceOp brings a tree into the build from outside it.
type SourceOp struct {
	Source SourceKind
	// Ref is the normalized image reference ("docker.io/library/busybox:latest"),
	// the local context name ("context"), or the URL.
	Ref string
	// Digest pins the content: the image manifest digest as resolved, or an
	// ADD --checksum.
	Digest   digest.Digest     `json:",omitempty"`
	Platform *ocispec.Platform `json:",omitempty"`
	Local    *LocalSource      `json:",omitempty"`
	HTTP     *HTTPSource       `json:",omitempty"`
	Git      *GitSource        `json:",omitempty"`
}

// LocalSource narrows a local context to the files a build may read.
type LocalSource struct {
	// ExcludePatterns are .dockerignore rules, in order, "!" for exceptions.
	ExcludePatterns []string `json:",omitempty"`
	// FollowPaths, when set, limits transfer to these paths (and their parents).
	FollowPaths []string `json:",omitempty"`
}

// HTTPSource is a file fetched from a URL (ADD https://...).
type HTTPSource struct {
	Filename string `json:",omitempty"`
	Mode     uint32 `json:",omitempty"`
	UID, GID int    `json:",omitempty"`
}

// GitSource is a git repository (ADD git@... or https://...git).
type GitSource struct {
	Ref        string `json:",omitempty"`
	Subdir     string `json:",omitempty"`
	KeepGitDir bool   `json:",omitempty"`
}

func (*SourceOp) isOp()        {}
func (*SourceOp) Kind() string { return "source" }
func (*ExecOp) isOp()          {}
func (*ExecOp) Kind() string   { return "exec" }
func (*FileOp) isOp()          {}
func (*FileOp) Kind() string   { return "file" }

// Digest returns the vertex's content digest: its op and its inputs' digests.
func (v *Vertex) Digest() digest.Digest {
	if v == nil {
		return ""
	}
	if v.dgst != "" {
		return v.dgst
	}
	ins := make([]digest.Digest, len(v.Inputs))
	for i, in := range v.Inputs {
		ins[i] = in.Digest()
	}
	b, err := json.Marshal(struct {
		Kind   string
		Op     Op
		Inputs []digest.Digest
	}{v.Op.Kind(), v.Op, ins})
	if err != nil {
		panic(fmt.Sprintf("llb: marshal %s op: %v", v.Op.Kind(), err))
	}
	v.dgst = digest.FromBytes(b)
	return v.dgst
}
