package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/strata-build/strata/context/ignore"
	"github.com/strata-build/strata/llb"
)

// Selection is the set of files one CopyAction reads from a Source.
type Selection struct {
	Source  Source
	Matches []Match

	root    string
	ignore  *ignore.Matcher // .dockerignore, on paths relative to the root
	exclude *ignore.Matcher // COPY --exclude, on paths relative to a Match
}

// Match is one source path of a copy after wildcard expansion.
type Match struct {
	// Path is the slash path relative to the tree root as matched, "." for
	// the root.
	Path string
	// Name is what the match is called inside a destination directory: its
	// base name, or with Parents its path below the "/./" pivot (or the
	// root). It is "." for directory contents copied without Parents.
	Name string
	// Host is the resolved host path read from; with FollowSymlinks a
	// symlink match is replaced by its target (inside the root).
	Host string
	// Info describes Host (not following a symlink at Host).
	Info fs.FileInfo
	// Contents is set for a directory whose contents, not itself, are
	// copied (CopyAction.CopyDirContents).
	Contents bool
}

// Entry is one file, directory, symlink or special file of a Match.
type Entry struct {
	Match *Match
	// Rel is the slash path relative to the Match, "" for the Match itself.
	Rel  string
	Host string
	Info fs.FileInfo
	// Link is the target of a symlink.
	Link string
}

// Dest is where the entry lands relative to a destination directory.
func (e Entry) Dest() string {
	return path.Join(e.Match.Name, e.Rel)
}

// SourcePath is where e is read from, as a user names it: its path in the
// build context ("app/main.go"), or its absolute path in a stage's
// filesystem ("/app/main.go"). A symlink followed at the match keeps the
// name it was matched by.
func (s *Selection) SourcePath(e Entry) string {
	if s.Source.Context {
		return path.Join(e.Match.Path, e.Rel)
	}
	return path.Join("/", e.Match.Path, e.Rel)
}

// Select expands the Src paths of a against src. A Src that does not exist
// (or is hidden by .dockerignore), or a wildcard that matches nothing
// without AllowEmptyWildcard, is a *NotFoundError. A wildcard, or an
// excluded directory that exceptions may re-include from, can take a walk
// of much of the tree: a cancelled ctx stops it with ctx.Err().
func Select(ctx context.Context, src Source, a *llb.CopyAction) (*Selection, error) {
	ig, err := ignore.NewMatcher(src.Excludes)
	if err != nil {
		return nil, err
	}
	ex, err := ignore.NewMatcher(a.Excludes)
	if err != nil {
		return nil, fmt.Errorf("copy --exclude: %w", err)
	}
	s := &Selection{Source: src, root: filepath.Clean(src.Root), ignore: ig, exclude: ex}
	for _, p := range a.Src {
		ms, err := s.expand(ctx, p, a)
		if err != nil {
			return nil, err
		}
		s.Matches = append(s.Matches, ms...)
	}
	return s, nil
}

// expand turns one Src into its Matches.
func (s *Selection) expand(ctx context.Context, raw string, a *llb.CopyAction) ([]Match, error) {
	pivot, p := splitPivot(raw)
	wild := a.AllowWildcard && hasMeta(p)
	var paths []string
	if wild {
		var err error
		paths, err = Glob(ctx, s.root, p)
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			if a.AllowEmptyWildcard {
				return nil, nil
			}
			return nil, &NotFoundError{Path: raw, Looked: []string{Clean(p)}}
		}
	} else {
		paths = []string{Clean(p)}
	}
	var out []Match
	for _, rel := range paths {
		m, err := s.match(ctx, raw, rel, a)
		var nf *NotFoundError
		if wild && errors.As(err, &nf) {
			continue // hidden by .dockerignore, or a dangling followed link
		}
		if err != nil {
			return nil, err
		}
		if wild {
			// A wildcard match is itself subject to --exclude.
			if x, err := s.exclude.Excluded(rel, m.Info.IsDir()); err != nil {
				return nil, err
			} else if x {
				continue
			}
		}
		m.Name = matchName(rel, pivot, a.Parents, m.Contents)
		out = append(out, m)
	}
	if wild && len(out) == 0 && !a.AllowEmptyWildcard {
		return nil, &NotFoundError{Path: raw, Looked: []string{Clean(p)}}
	}
	return out, nil
}

// match stats one root-relative path, following it when asked.
func (s *Selection) match(ctx context.Context, raw, rel string, a *llb.CopyAction) (Match, error) {
	host, err := ResolveParent(s.root, rel)
	if err != nil {
		return Match{}, err
	}
	looked := []string{rel}
	fi, err := os.Lstat(host)
	if err == nil && a.FollowSymlinks && fi.Mode()&fs.ModeSymlink != 0 {
		if host, err = Resolve(s.root, rel); err != nil {
			return Match{}, err
		}
		looked = append(looked, RelTo(s.root, host))
		fi, err = os.Lstat(host)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || isNotDir(err) {
		return Match{}, &NotFoundError{Path: raw, Looked: looked}
	}
	if err != nil {
		return Match{}, fmt.Errorf("stat copy source %s: %w", raw, err)
	}
	excluded, err := s.ignore.Excluded(RelTo(s.root, host), fi.IsDir())
	if err != nil {
		return Match{}, err
	}
	m := Match{Path: rel, Host: host, Info: fi, Contents: fi.IsDir() && a.CopyDirContents}
	if excluded {
		// With "!" exceptions an excluded directory may still hold files.
		if !fi.IsDir() || !s.ignore.HasExceptions() {
			return Match{}, &NotFoundError{Path: raw, Looked: looked, Excluded: true}
		}
		kids, err := s.walkDir(ctx, &m, host, "", nil)
		if err != nil {
			return Match{}, err
		}
		if len(kids) == 0 {
			return Match{}, &NotFoundError{Path: raw, Looked: looked, Excluded: true}
		}
	}
	return m, nil
}

// matchName is the name a match gets inside a destination directory.
func matchName(rel, pivot string, parents, contents bool) string {
	if parents {
		if pivot != "" {
			if r, ok := strings.CutPrefix(rel, pivot+"/"); ok {
				return r
			}
			if rel == pivot {
				return "."
			}
		}
		return rel
	}
	if contents {
		return "."
	}
	return path.Base(rel)
}

// splitPivot finds the "/./" marker of COPY --parents: the parents kept
// are those below it. It returns the cleaned pivot ("" when none) and the
// path without the marker.
func splitPivot(p string) (pivot, rest string) {
	s := filepath.ToSlash(p)
	trimmed := strings.TrimPrefix(strings.TrimLeft(s, "/"), "./")
	i := strings.Index(trimmed, "/./")
	if i < 0 {
		return "", p
	}
	return Clean(trimmed[:i]), trimmed[:i] + "/" + trimmed[i+3:]
}

// Walk calls fn for the Match itself and then, for a directory, for every
// entry below it in lexical order, parents before children. Entries hidden
// by .dockerignore or --exclude are left out; an excluded directory is kept
// only when an exception re-includes something below it. Symlinks below
// the Match are reported, never followed. A cancelled ctx stops the walk,
// between two calls of fn, with ctx.Err().
func (s *Selection) Walk(ctx context.Context, m *Match, fn func(Entry) error) error {
	entries, err := s.AppendEntries(ctx, m, nil)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AppendEntries appends to out the entries Walk reports for m, in the same
// order, and returns the extended slice.
func (s *Selection) AppendEntries(ctx context.Context, m *Match, out []Entry) ([]Entry, error) {
	top := Entry{Match: m, Host: m.Host, Info: m.Info}
	if m.Info.Mode()&fs.ModeSymlink != 0 {
		link, err := os.Readlink(m.Host)
		if err != nil {
			return nil, fmt.Errorf("read symlink %s: %w", m.Path, err)
		}
		top.Link = link
	}
	out = append(out, top)
	if !m.Info.IsDir() {
		return out, nil
	}
	return s.walkDir(ctx, m, m.Host, "", out)
}

// checkEvery is how many entries of one directory a walk handles between
// two looks at its context; it also looks once per directory.
const checkEvery = 256

// walkDir appends the kept entries below host, which is the Match-relative
// directory rel, to out. A cancelled ctx stops it with ctx.Err().
func (s *Selection) walkDir(ctx context.Context, m *Match, host, rel string, out []Entry) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ds, err := statDir(host)
	if err != nil {
		return nil, err
	}
	keepExcludedDirs := s.ignore.HasExceptions() || s.exclude.HasExceptions()
	for i, name := range ds.names {
		if i%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e := Entry{Match: m, Rel: joinRel(rel, name), Host: joinHost(host, name), Info: &ds.infos[i]}
		isDir := e.Info.IsDir()
		excluded, err := s.excluded(e, isDir)
		if err != nil {
			return nil, err
		}
		if excluded && !(isDir && keepExcludedDirs) {
			continue
		}
		if isDir {
			n := len(out)
			out, err = s.walkDir(ctx, m, e.Host, e.Rel, append(out, e))
			if err != nil {
				return nil, err
			}
			if excluded && len(out) == n+1 {
				out = out[:n] // nothing below was re-included
			}
			continue
		}
		if ds.links != nil {
			e.Link = ds.links[i]
		}
		out = append(out, e)
	}
	return out, nil
}

// joinRel joins a name to a Match-relative slash path ("" for the Match).
func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// joinHost joins a name to a clean host directory path.
func joinHost(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (s *Selection) excluded(e Entry, dir bool) (bool, error) {
	if !s.ignore.Empty() {
		if x, err := s.ignore.Excluded(RelTo(s.root, e.Host), dir); err != nil || x {
			return x, err
		}
	}
	if s.exclude.Empty() {
		return false, nil
	}
	return s.exclude.Excluded(e.Rel, dir)
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
