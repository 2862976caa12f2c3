package llb

import "time"

// FileOp applies Actions in order on top of its base input and outputs the
// resulting tree.
type FileOp struct {
	// Base is the index into Vertex.Inputs of the tree the actions apply
	// to, or -1 for scratch.
	Base    int
	Actions []FileAction
}

// FileAction is exactly one of its fields.
type FileAction struct {
	Copy   *CopyAction   `json:",omitempty"`
	Mkdir  *MkdirAction  `json:",omitempty"`
	Mkfile *MkfileAction `json:",omitempty"`
	Rm     *RmAction     `json:",omitempty"`
}

// Chown sets the owner of created files. User and Group are names or numeric
// ids; names are resolved in the destination tree's /etc/passwd and
// /etc/group. An empty Group with a user name means the user's primary group;
// with a numeric user it means the same number.
type Chown struct {
	User  string
	Group string `json:",omitempty"`
}

// CopyAction copies Src paths of the source input to Dest in the base.
type CopyAction struct {
	// Source is the index into Vertex.Inputs to copy from.
	Source int
	// Src are paths relative to the source root; they may hold wildcards
	// when AllowWildcard is set.
	Src []string
	// Dest is an absolute path in the base; a trailing "/" means a directory.
	Dest  string
	Chown *Chown `json:",omitempty"`
	// Chmod is an octal or symbolic mode applied to copied files.
	Chmod string `json:",omitempty"`
	// FollowSymlinks resolves a Src that is a symlink to its target.
	FollowSymlinks bool `json:",omitempty"`
	// CopyDirContents copies what a source directory holds, not the
	// directory itself (Dockerfile COPY semantics).
	CopyDirContents bool `json:",omitempty"`
	// CreateDestPath creates missing parents of Dest.
	CreateDestPath bool `json:",omitempty"`
	AllowWildcard  bool `json:",omitempty"`
	// AllowEmptyWildcard accepts a wildcard that matches nothing.
	AllowEmptyWildcard bool `json:",omitempty"`
	// AttemptUnpack extracts local tar archives (ADD).
	AttemptUnpack bool `json:",omitempty"`
	// Excludes are patterns (COPY --exclude) relative to the source root.
	Excludes []string `json:",omitempty"`
	// Parents keeps the source's parent directories (COPY --parents).
	Parents bool `json:",omitempty"`
	// Timestamp, when set, overrides the mtime of created files.
	Timestamp *time.Time `json:",omitempty"`
}

// MkdirAction creates a directory.
type MkdirAction struct {
	Path        string
	Mode        uint32
	MakeParents bool       `json:",omitempty"`
	Chown       *Chown     `json:",omitempty"`
	Timestamp   *time.Time `json:",omitempty"`
}

// MkfileAction creates a file with the given content (COPY <<EOF).
type MkfileAction struct {
	Path      string
	Mode      uint32
	Data      []byte
	Chown     *Chown     `json:",omitempty"`
	Timestamp *time.Time `json:",omitempty"`
}

// RmAction removes a path.
type RmAction struct {
	Path          string
	AllowNotFound bool `json:",omitempty"`
	AllowWildcard bool `json:",omitempty"`
}
