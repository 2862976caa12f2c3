package contenthash

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Cache remembers file content digests across builds. It is safe for
// concurrent use; several processes may share its directory (the last Save
// wins, and a file that cannot be read starts the cache empty).
type Cache struct {
	dir string

	mu      sync.Mutex
	records map[string]record // by path
	dirty   bool

	// hashed, when set, is called before a file's content is read.
	hashed func(path string)
}

type record struct {
	Key    key
	Digest digest.Digest
}

// OpenCache opens the cache persisted under dir, creating dir. A missing or
// corrupt cache file gives an empty cache.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create content hash cache %s: %w", dir, err)
	}
	c := &Cache{dir: dir, records: map[string]record{}}
	if recs, err := readCache(filepath.Join(dir, cacheFile)); err == nil {
		c.records = recs
	}
	return c, nil
}

func (c *Cache) lookup(k key) (digest.Digest, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[k.Path]
	if !ok || r.Key != k {
		return "", false
	}
	return r.Digest, true
}

func (c *Cache) store(k key, d digest.Digest) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records[k.Path] = record{Key: k, Digest: d}
	c.dirty = true
}

// Save writes the cache to its directory atomically: a temporary file,
// synced, renamed over the previous one.
func (c *Cache) Save() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	recs := make([]record, 0, len(c.records))
	for _, r := range c.records {
		recs = append(recs, r)
	}
	c.dirty = false
	c.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key.Path < recs[j].Key.Path })
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(recs); err != nil {
		return fmt.Errorf("encode content hash cache: %w", err)
	}
	return writeAtomic(filepath.Join(c.dir, cacheFile), buf.Bytes())
}

func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", p, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", p, err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync() // make the rename durable; failure leaves the old file
		d.Close()
	}
	return nil
}
