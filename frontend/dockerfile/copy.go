package dockerfile

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/llb"
)

// copySpec is what COPY and ADD have in common.
type copySpec struct {
	instructions.SourcesAndDest
	add        bool
	from       string
	chown      string
	chmod      string
	link       bool
	parents    bool
	excludes   []string
	keepGitDir *bool
	checksum   string
	unpack     *bool
}

func copyFromCopy(x *instructions.CopyCommand) copySpec {
	return copySpec{SourcesAndDest: x.SourcesAndDest, from: x.From, chown: x.Chown, chmod: x.Chmod,
		link: x.Link, parents: x.Parents, excludes: x.ExcludePatterns}
}

func copyFromAdd(x *instructions.AddCommand) copySpec {
	return copySpec{SourcesAndDest: x.SourcesAndDest, add: true, chown: x.Chown, chmod: x.Chmod, link: x.Link,
		excludes: x.ExcludePatterns, keepGitDir: x.KeepGitDir, checksum: x.Checksum, unpack: x.Unpack}
}

func (cs copySpec) verb() string {
	if cs.add {
		return "ADD"
	}
	return "COPY"
}

// contextVertex is the one local SourceOp for the build context.
func (c *converter) contextVertex() *llb.Vertex {
	if c.ctxVertex == nil {
		c.ctxVertex = &llb.Vertex{
			Op: &llb.SourceOp{Source: llb.SourceLocal, Ref: "context",
				Local: &llb.LocalSource{ExcludePatterns: c.opts.ContextExcludes}},
			Meta: llb.Meta{Name: "[internal] load build context"},
		}
	}
	return c.ctxVertex
}

// copyInput returns the index of in among v's inputs, appending it once;
// unlike mounts, a scratch source is a real (nil) input.
func copyInput(v *llb.Vertex, in *llb.Vertex) int {
	for i, x := range v.Inputs {
		if x == in {
			return i
		}
	}
	v.Inputs = append(v.Inputs, in)
	return len(v.Inputs) - 1
}

var symbolicMode = regexp.MustCompile(`^[ugoa]*[-+=]([rwxXst]*|[ugo])(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*$`)

func checkChmod(mode string) error {
	if n, err := strconv.ParseUint(mode, 8, 32); err == nil {
		if n > 0o7777 {
			return fmt.Errorf("invalid chmod parameter: '%v'. it should be octal string and between 0 and 07777", mode)
		}
		return nil
	}
	if _, err := strconv.Atoi(mode); err == nil || !symbolicMode.MatchString(mode) {
		return fmt.Errorf("invalid chmod parameter: '%v'. it should be octal string and between 0 and 07777", mode)
	}
	return nil
}

func (c *converter) checkCopy(cs copySpec, dest string) error {
	if n := len(cs.SourcePaths) + len(cs.SourceContents); n > 1 && !strings.HasSuffix(dest, "/") {
		return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /", cs.verb())
	}
	if cs.chown != "" && cs.link {
		ch := parseChown(cs.chown)
		if !isNumeric(ch.User) || (ch.Group != "" && !isNumeric(ch.Group)) {
			return fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", cs.chown)
		}
	}
	if cs.chmod != "" {
		if err := checkChmod(cs.chmod); err != nil {
			return err
		}
	}
	if cs.checksum != "" {
		if len(cs.SourcePaths) != 1 {
			return errors.New("checksum can't be specified for multiple sources")
		}
		if !isHTTPSource(cs.SourcePaths[0]) && !isGitSource(cs.SourcePaths[0]) {
			return errors.New("checksum requires HTTP(S) or Git sources")
		}
	}
	return nil
}

func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// dispatchCopy turns COPY and ADD into one FileOp over the stage root.
func (c *converter) dispatchCopy(s *stage, cs copySpec, cmd command) error {
	dest := resolveDest(s.dir, cs.DestPath)
	if err := c.checkCopy(cs, dest); err != nil {
		return err
	}
	var chown *llb.Chown
	if cs.chown != "" {
		chown = parseChown(cs.chown)
	}
	src := c.contextVertex()
	if len(cmd.sources) > 0 {
		from := cmd.sources[0]
		if !from.dispatched {
			return fmt.Errorf("cannot copy from stage %q, it needs to be defined before current stage %q", cs.from, s.name)
		}
		src = from.root
	}
	v := &llb.Vertex{Inputs: []*llb.Vertex{s.root}}
	op := &llb.FileOp{Base: 0}
	if cs.linked() {
		v.Inputs, op.Base = nil, -1 // onto scratch, merged below
	}
	msg := cs.verb()
	if cs.parents {
		msg += " --parents"
	}
	if cs.chown != "" {
		msg += " --chown=" + cs.chown
	}
	if cs.chmod != "" {
		msg += " --chmod=" + cs.chmod
	}
	for _, p := range cs.SourcePaths {
		msg += " " + p
		a, err := c.copySource(cs, p, dest, src, v)
		if err != nil {
			return err
		}
		a.Chown, a.Chmod = chown, cs.chmod
		op.Actions = append(op.Actions, llb.FileAction{Copy: a})
	}
	dirs := map[string]bool{}
	for _, sc := range cs.SourceContents {
		msg += " <<" + sc.Path
		op.Actions = append(op.Actions, heredocFile(sc, dest, chown, cs.chmod, dirs)...)
	}
	msg += " " + cs.DestPath
	v.Op = op
	v.Meta = c.meta(s, s.prefix(c.displayName(s, cmd), cmd.onBuild), cmd.Location(), cmd.step)
	if cs.linked() {
		s.root = c.linkMerge(s, s.root, v, cmd)
	} else {
		s.root = v
	}
	c.commitHistory(&s.img, msg, true, true)
	return nil
}

// copySource makes the copy action for one source path: a git repository
// or URL (ADD only), or a path of the context or of the --from stage.
func (c *converter) copySource(cs copySpec, p, dest string, src *llb.Vertex, v *llb.Vertex) (*llb.CopyAction, error) {
	switch {
	case isGitSource(p):
		if !cs.add {
			return nil, errors.New("source can't be a git ref for COPY")
		}
		g := gitVertex(p, cs)
		return &llb.CopyAction{Source: copyInput(v, g), Src: []string{"/"}, Dest: dest, CreateDestPath: true, CopyDirContents: true}, nil
	case isHTTPSource(p):
		if !cs.add {
			return nil, errors.New("source can't be a URL for COPY")
		}
		h, f, err := httpVertex(p, cs.checksum)
		if err != nil {
			return nil, err
		}
		unpack := cs.unpack != nil && *cs.unpack
		return &llb.CopyAction{Source: copyInput(v, h), Src: []string{"/" + f}, Dest: dest, CreateDestPath: true, AttemptUnpack: unpack}, nil
	}
	if src == c.ctxVertex && outsideContext(p) {
		return nil, fmt.Errorf("%s source %q is outside the build context", cs.verb(), p)
	}
	unpack := cs.add
	if cs.unpack != nil {
		unpack = *cs.unpack
	}
	return &llb.CopyAction{
		Source:             copyInput(v, src),
		Src:                []string{normalizeSrc(p, cs.parents)},
		Dest:               dest,
		FollowSymlinks:     true,
		CopyDirContents:    true,
		CreateDestPath:     true,
		AllowWildcard:      true,
		AllowEmptyWildcard: true,
		AttemptUnpack:      unpack,
		Excludes:           cs.excludes,
		Parents:            cs.parents,
	}, nil
}

// outsideContext reports whether a relative source path climbs above the
// context root ("../x", "a/../../x"). Such a path would be clamped to the
// root; it is refused instead, since it never names what the user meant.
func outsideContext(p string) bool {
	if path.IsAbs(p) {
		return false
	}
	c := path.Clean(p)
	return c == ".." || strings.HasPrefix(c, "../")
}

// normalizeSrc makes a source path absolute and clean; with --parents a
// "/./" pivot (the point below which parents are kept) survives.
func normalizeSrc(p string, parents bool) string {
	if parents {
		if dir, rest, ok := strings.Cut(p, "/./"); ok {
			return strings.TrimSuffix(path.Join("/", dir), "/") + "/./" + strings.TrimPrefix(path.Clean("/"+rest), "/")
		}
	}
	return path.Join("/", p)
}

// heredocFile writes an inline COPY <<EOF document to dest.
// dirs tracks the parents already created by the same FileOp.
func heredocFile(sc instructions.SourceContent, dest string, chown *llb.Chown, chmod string, dirs map[string]bool) []llb.FileAction {
	p := dest
	if strings.HasSuffix(dest, "/") {
		p = path.Join(dest, sc.Path)
	}
	mode := uint32(0o644)
	if n, err := strconv.ParseUint(chmod, 8, 32); err == nil {
		mode = uint32(n)
	}
	var acts []llb.FileAction
	if dir := path.Dir(p); dir != "/" && !dirs[dir] {
		dirs[dir] = true
		acts = append(acts, llb.FileAction{Mkdir: &llb.MkdirAction{Path: dir, Mode: 0o755, MakeParents: true}})
	}
	return append(acts, llb.FileAction{Mkfile: &llb.MkfileAction{Path: p, Mode: mode, Data: []byte(sc.Data), Chown: chown}})
}

func isHTTPSource(src string) bool {
	return (strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")) && !isGitSource(src)
}

// isGitSource recognizes git@host:repo, git://, ssh:// and http(s) URLs
// whose path ends in .git (before an optional #ref:subdir fragment).
func isGitSource(src string) bool {
	if strings.HasPrefix(src, "git@") || strings.HasPrefix(src, "git://") || strings.HasPrefix(src, "ssh://") {
		return true
	}
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return false
	}
	u, err := url.Parse(src)
	return err == nil && strings.HasSuffix(u.Path, ".git")
}

func gitVertex(src string, cs copySpec) *llb.Vertex {
	remote, frag, _ := strings.Cut(src, "#")
	ref, subdir, _ := strings.Cut(frag, ":")
	g := &llb.GitSource{Ref: ref, Subdir: subdir, KeepGitDir: cs.keepGitDir != nil && *cs.keepGitDir}
	return &llb.Vertex{
		Op:   &llb.SourceOp{Source: llb.SourceGit, Ref: remote, Digest: digest.Digest(cs.checksum), Git: g},
		Meta: llb.Meta{Name: "[internal] load git source " + src},
	}
}

func httpVertex(src, checksum string) (*llb.Vertex, string, error) {
	f := "__unnamed__"
	if u, err := url.Parse(src); err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" {
			f = b
		}
	}
	var dg digest.Digest
	if checksum != "" {
		var err error
		if dg, err = digest.Parse(checksum); err != nil {
			return nil, "", fmt.Errorf("invalid checksum %q: %w", checksum, err)
		}
	}
	return &llb.Vertex{
		Op:   &llb.SourceOp{Source: llb.SourceHTTP, Ref: src, Digest: dg, HTTP: &llb.HTTPSource{Filename: f}},
		Meta: llb.Meta{Name: "[internal] load remote file " + src},
	}, f, nil
}
