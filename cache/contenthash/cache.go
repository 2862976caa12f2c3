package contenthash

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/atomicfile"
)

// Cache remembers file content digests across builds, in one file per tree
// root, so a build loads only the records of the trees it reads. It is safe
// for concurrent use; several processes may share its directory (the last
// Save of a root wins, and a file that cannot be read starts that root
// empty).
type Cache struct {
	dir string

	mu    sync.Mutex
	roots map[string]*rootCache // by cleaned root

	// hashed, when set, is called before a file's content is read.
	hashed func(path string)
}

// rootCache holds the records of the files below one root. A record whose
// file was not seen by a walk of a directory that holds it is stale: the
// file is gone (or now excluded) and Save drops it.
type rootCache struct {
	file string

	mu      sync.Mutex
	records map[string]*record // by host path
	dirty   bool
	walked  []string // host directories walked whole
}

type record struct {
	Key    key
	Digest digest.Digest
	seen   bool
}

// fileMagic starts a cache file; change it when the format changes.
const fileMagic = "strata.contenthash.v2\n"

// legacyFile is the single gob file older versions kept; Save removes it.
const legacyFile = "contenthash.gob"

// OpenCache opens the cache persisted under dir, creating dir. Records are
// read when a root is first checksummed.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create content hash cache %s: %w", dir, err)
	}
	return &Cache{dir: dir, roots: map[string]*rootCache{}}, nil
}

// fileFor is the cache file of a root.
func (c *Cache) fileFor(root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(c.dir, "root-"+hex.EncodeToString(sum[:16])+".bin")
}

// root returns the records of root, loading them on first use; a nil c
// gives nil, which remembers nothing.
func (c *Cache) root(root string) *rootCache {
	if c == nil {
		return nil
	}
	root = filepath.Clean(root)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.roots[root]; ok {
		return rc
	}
	rc := &rootCache{file: c.fileFor(root)}
	if recs, err := readCache(rc.file); err == nil {
		rc.records = recs
	} else {
		rc.records = map[string]*record{}
	}
	c.roots[root] = rc
	return rc
}

func (rc *rootCache) lookup(k key) (digest.Digest, bool) {
	if rc == nil {
		return "", false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r, ok := rc.records[k.Path]
	if !ok {
		return "", false
	}
	r.seen = true // a changed file is still there: its new record replaces this one
	if r.Key != k {
		return "", false
	}
	return r.Digest, true
}

func (rc *rootCache) store(k key, d digest.Digest) {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.records[k.Path] = &record{Key: k, Digest: d, seen: true}
	rc.dirty = true
}

// size is the number of records, 0 for nil.
func (rc *rootCache) size() int {
	if rc == nil {
		return 0
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.records)
}

// walkedDir notes that every kept file below dir was looked up.
func (rc *rootCache) walkedDir(dir string) {
	if rc == nil {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.walked = append(rc.walked, dir)
}

// Save writes the roots whose records changed, each atomically: a
// temporary file, synced, renamed over the previous one. Records of files
// that a walk of their directory no longer found are dropped. A no-op
// build writes nothing.
func (c *Cache) Save() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	roots := make([]*rootCache, 0, len(c.roots))
	for _, rc := range c.roots {
		roots = append(roots, rc)
	}
	c.mu.Unlock()
	var errs []error
	wrote := false
	for _, rc := range roots {
		data := rc.encodeIfChanged()
		if data == nil {
			continue
		}
		wrote = true
		if err := atomicfile.WriteFile(rc.file, data, 0o600); err != nil {
			errs = append(errs, fmt.Errorf("save checksums: %w", err))
		}
	}
	if wrote {
		_ = os.Remove(filepath.Join(c.dir, legacyFile))
	}
	return errors.Join(errs...)
}

// encodeIfChanged drops stale records and encodes the rest when anything
// changed, or returns nil.
func (rc *rootCache) encodeIfChanged() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for p, r := range rc.records {
		if !r.seen && rc.below(p) {
			delete(rc.records, p)
			rc.dirty = true
		}
	}
	rc.walked = nil
	if !rc.dirty {
		return nil
	}
	rc.dirty = false
	recs := make([]*record, 0, len(rc.records))
	for _, r := range rc.records {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key.Path < recs[j].Key.Path })
	return encodeRecords(recs)
}

// below reports whether p is inside a directory walked whole.
func (rc *rootCache) below(p string) bool {
	for _, dir := range rc.walked {
		if dir == "/" || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// encodeRecords writes the cache file format: fileMagic, then per record
// its path, device, inode, size, mtime and ctime as varints (the path
// length-prefixed) and its digest, length-prefixed.
func encodeRecords(recs []*record) []byte {
	b := make([]byte, 0, len(fileMagic)+len(recs)*160)
	b = append(b, fileMagic...)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		k := r.Key
		b = binary.AppendUvarint(b, uint64(len(k.Path)))
		b = append(b, k.Path...)
		b = binary.AppendUvarint(b, k.Dev)
		b = binary.AppendUvarint(b, k.Ino)
		b = binary.AppendVarint(b, k.Size)
		b = binary.AppendVarint(b, k.Mtime)
		b = binary.AppendVarint(b, k.Ctime)
		b = binary.AppendUvarint(b, uint64(len(r.Digest)))
		b = append(b, r.Digest...)
	}
	return b
}

// readCache decodes a cache file. Its paths and digests share the memory
// of one string, and its records one slice.
func readCache(p string) (map[string]*record, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	s := string(data)
	if !strings.HasPrefix(s, fileMagic) {
		return nil, fmt.Errorf("decode %s: not a content hash cache", p)
	}
	d := decoder{s: s, off: len(fileMagic)}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(s)) {
		return nil, fmt.Errorf("decode %s: bad record count", p)
	}
	recs := make([]record, n)
	m := make(map[string]*record, n)
	for i := range recs {
		r := &recs[i]
		r.Key.Path = d.str()
		r.Key.Dev, r.Key.Ino = d.uvarint(), d.uvarint()
		r.Key.Size, r.Key.Mtime, r.Key.Ctime = d.varint(), d.varint(), d.varint()
		r.Digest = digest.Digest(d.str())
		if d.err != nil {
			return nil, fmt.Errorf("decode %s: record %d: %w", p, i, d.err)
		}
		m[r.Key.Path] = r
	}
	return m, nil
}

// decoder reads varints and length-prefixed strings from s; the first
// error sticks.
type decoder struct {
	s   string
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.off >= len(d.s) {
			break
		}
		c := d.s[d.off]
		d.off++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	d.err = errTruncated
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.off) {
		d.err = errTruncated
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}
