package registry

import (
	"slices"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// BlobSources records the repositories a blob is known to live in, so that a
// push can mount the blob from one of them instead of uploading it.
//
// A repository is written "host/path" in the form image names take after
// normalization, without tag or digest: "docker.io/library/busybox",
// "127.0.0.1:5000/app". Implementations must be safe for concurrent use; an
// entry may be stale (the blob deleted since), which costs one refused mount.
type BlobSources interface {
	// Sources returns the repositories d was pulled from or pushed to, the
	// most recent first.
	Sources(d digest.Digest) []string
	// Add records that d lives in hostRepo.
	Add(d digest.Digest, hostRepo string)
}

// maxSourcesPerBlob bounds the repositories MemorySources keeps per blob;
// the oldest are forgotten first.
const maxSourcesPerBlob = 8

// MemorySources is a BlobSources held in memory, for tests and for one
// process's lifetime. The zero value is ready to use.
type MemorySources struct {
	mu sync.Mutex
	m  map[digest.Digest][]string
}

// Sources returns the repositories recorded for d, the most recent first.
func (s *MemorySources) Sources(d digest.Digest) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.m[d])
}

// Add records hostRepo as the most recent source of d.
func (s *MemorySources) Add(d digest.Digest, hostRepo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[digest.Digest][]string{}
	}
	list := slices.DeleteFunc(s.m[d], func(r string) bool { return r == hostRepo })
	list = append([]string{hostRepo}, list...)
	if len(list) > maxSourcesPerBlob {
		list = list[:maxSourcesPerBlob]
	}
	s.m[d] = list
}

// repositoryOf is the repository of a normalized name: the name without its
// digest and tag.
func repositoryOf(normalized string) string {
	repo, _, _ := strings.Cut(normalized, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return repo
}
