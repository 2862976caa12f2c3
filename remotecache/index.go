package remotecache

import (
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
)

// BlobSource is where an imported cache's layers can be fetched from: a
// cache.BlobFetcher (blobs cs has are skipped) that names itself.
type BlobSource interface {
	cache.BlobFetcher
	// String names the source in messages.
	String() string
}

// Index is the records of the imported caches, by key. The first cache
// added wins for a key. It is safe for concurrent use.
type Index struct {
	keyVersion string

	mu      sync.Mutex
	entries map[digest.Digest]indexed
	order   []digest.Digest
	links   map[digest.Digest]digest.Digest
}

type indexed struct {
	Entry
	src BlobSource
}

// NewIndex returns an empty index accepting records of keyVersion.
func NewIndex(keyVersion string) *Index {
	return &Index{keyVersion: keyVersion, entries: map[digest.Digest]indexed{}, links: map[digest.Digest]digest.Digest{}}
}

// Add takes the records of cfg, whose layers src holds. A config of another
// key format is an error (its keys cannot match).
func (ix *Index) Add(cfg Config, src BlobSource) error {
	if cfg.KeyVersion != ix.keyVersion {
		return fmt.Errorf("cache %s has key format %q, this strata uses %q", src, cfg.KeyVersion, ix.keyVersion)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, e := range cfg.Entries() {
		if _, ok := ix.entries[e.Key]; ok {
			continue
		}
		ix.entries[e.Key] = indexed{Entry: e, src: src}
		ix.order = append(ix.order, e.Key)
	}
	for _, l := range cfg.Links {
		if _, ok := ix.links[l.Link]; !ok {
			ix.links[l.Link] = l.Key
		}
	}
	return nil
}

// LookupLink returns the key a link key stood for.
func (ix *Index) LookupLink(link digest.Digest) (digest.Digest, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	k, ok := ix.links[link]
	return k, ok
}

// Links returns every imported link.
func (ix *Index) Links() map[digest.Digest]digest.Digest {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make(map[digest.Digest]digest.Digest, len(ix.links))
	for l, k := range ix.links {
		out[l] = k
	}
	return out
}

// Len is the number of records.
func (ix *Index) Len() int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return len(ix.entries)
}

// Lookup returns the layers of key's result, base first.
func (ix *Index) Lookup(key digest.Digest) ([]cache.Layer, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e, ok := ix.entries[key]
	return e.Layers, ok
}

// Imported is an imported record with where its layers are.
type Imported struct {
	Entry
	Source BlobSource
}

// Entries lists the records in the order they were added.
func (ix *Index) Entries() []Imported {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	out := make([]Imported, 0, len(ix.order))
	for _, k := range ix.order {
		e := ix.entries[k]
		out = append(out, Imported{Entry: e.Entry, Source: e.src})
	}
	return out
}
