package store

import (
	"encoding/json"
	"slices"
	"sync"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-build/strata/cache/metadata"
)

// sourcesBucket maps a blob digest to the registry repositories it is known
// to live in ("host/path", most recent first), so a push can mount a blob
// from another repository of the same registry instead of uploading it.
var sourcesBucket = []byte("blob-sources")

// maxSources bounds the repositories kept per blob; the oldest go first.
const maxSources = 8

// blobSources is the store's registry.BlobSources: reads go to the metadata
// DB once per digest, additions are kept in memory and written in one
// transaction by flush (Close flushes).
type blobSources struct {
	db *metadata.DB

	mu    sync.Mutex
	known map[digest.Digest][]string // read or written this process
	dirty map[digest.Digest]bool
}

func newBlobSources(db *metadata.DB) *blobSources {
	return &blobSources{db: db, known: map[digest.Digest][]string{}, dirty: map[digest.Digest]bool{}}
}

// Sources returns the repositories d was pulled from or pushed to, the most
// recent first. A DB that cannot be read gives none: a mount is only an
// optimization.
func (s *blobSources) Sources(d digest.Digest) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.load(d))
}

// Add records hostRepo as the most recent source of d.
func (s *blobSources) Add(d digest.Digest, hostRepo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(s.load(d)), func(r string) bool { return r == hostRepo })
	list = append([]string{hostRepo}, list...)
	if len(list) > maxSources {
		list = list[:maxSources]
	}
	s.known[d] = list
	s.dirty[d] = true
}

// load returns what is known of d, reading the DB the first time.
func (s *blobSources) load(d digest.Digest) []string {
	if list, ok := s.known[d]; ok {
		return list
	}
	var list []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(sourcesBucket); b != nil {
			if v := b.Get([]byte(d)); v != nil {
				return json.Unmarshal(v, &list)
			}
		}
		return nil
	})
	s.known[d] = list
	return list
}

// flush writes the additions since the last flush.
func (s *blobSources) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.dirty) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(sourcesBucket)
		if err != nil {
			return err
		}
		for d := range s.dirty {
			v, err := json.Marshal(s.known[d])
			if err != nil {
				return err
			}
			if err := b.Put([]byte(d), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		clear(s.dirty)
	}
	return err
}
