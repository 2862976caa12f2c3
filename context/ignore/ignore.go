// Package ignore reads .dockerignore files and answers which build-context
// paths they exclude.
//
// A build's ignore file is either "<Dockerfile>.dockerignore" next to the
// Dockerfile (for example "app.Dockerfile.dockerignore") or, when that does not
// exist, ".dockerignore" at the root of the context. ReadFile returns its
// patterns; NewMatcher compiles them. Patterns use filepath.Match syntax plus
// "**" for any number of directories; a pattern starting with "!" is an
// exception that re-includes what an earlier pattern excluded. A path is
// excluded when it or one of its parent directories matches, so excluding
// "docs" excludes everything below it unless an exception says otherwise.
//
//	patterns, err := ignore.ReadFile(contextDir, dockerfilePath)
//	m, err := ignore.NewMatcher(patterns)
//	excluded, err := m.Excluded("docs/readme.md", false)
package ignore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ReadFile returns the ignore patterns for a build: <dockerfile>.dockerignore
// next to the Dockerfile wins over <context>/.dockerignore; when neither
// exists it returns nil. An empty dockerfilePath skips the first lookup.
func ReadFile(contextDir, dockerfilePath string) ([]string, error) {
	var candidates []string
	if dockerfilePath != "" {
		candidates = append(candidates, dockerfilePath+".dockerignore")
	}
	candidates = append(candidates, filepath.Join(contextDir, ".dockerignore"))
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open ignore file %s: %w", p, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read ignore file %s: %w", p, err)
		}
		return patterns, nil
	}
	return nil, nil
}

// Matcher answers whether a context-relative path is excluded. It is safe
// for concurrent use.
type Matcher struct {
	mu sync.Mutex // patternmatcher is not safe for concurrent calls
	pm *patternmatcher.PatternMatcher
}

// NewMatcher compiles patterns. A nil or empty list gives a Matcher that
// excludes nothing.
func NewMatcher(patterns []string) (*Matcher, error) {
	if len(patterns) == 0 {
		return &Matcher{}, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("compile ignore patterns: %w", err)
	}
	return &Matcher{pm: pm}, nil
}

// Excluded reports whether rel, a slash path relative to the context root
// (a leading "/" or "./" is allowed), is excluded by the patterns: it or a
// parent matches and no later exception re-includes it. The root itself is
// never excluded. isDir is accepted for callers that know it; patterns do not
// distinguish directories from files.
func (m *Matcher) Excluded(rel string, isDir bool) (bool, error) {
	if m == nil || m.pm == nil {
		return false, nil
	}
	rel = path.Clean("/" + filepath.ToSlash(rel))
	rel = strings.TrimPrefix(rel, "/")
	if rel == "" {
		return false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, err := m.pm.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf("match %s against ignore patterns: %w", rel, err)
	}
	return ok, nil
}

// HasExceptions reports whether some pattern starts with "!", so that a
// path below an excluded directory may still be included. A walker must then
// look inside excluded directories.
func (m *Matcher) HasExceptions() bool {
	return m != nil && m.pm != nil && m.pm.Exclusions()
}

// Empty reports whether the Matcher has no patterns.
func (m *Matcher) Empty() bool { return m == nil || m.pm == nil }
