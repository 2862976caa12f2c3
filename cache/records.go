// Package cache keeps what the solver and the exporters remember between
// builds, in the store's metadata database:
//
//   - result records: a cache key (a digest computed by the solver) names the
//     committed snapshot that holds the step's output;
//   - layer records: a committed snapshot names the compressed layer blob made
//     from its diff, so a layer is compressed once however often it is exported;
//   - step records: the key parts of the last build of a Dockerfile step, so a
//     cache miss can be explained against it.
//
// Records never hold files; the snapshots and blobs they point at live in
// cache/snapshot and cache/content. A record whose target vanished is a miss.
package cache

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/strata-build/strata/cache/metadata"
)

var (
	bucketResults = []byte("results")
	bucketLayers  = []byte("layers")
	bucketSteps   = []byte("steps")
	bucketSums    = []byte("sums")
	bucketLinks   = []byte("links")
)

// Records is the record index over one metadata DB.
type Records struct {
	db *metadata.DB
}

// NewRecords returns the records kept in db.
func NewRecords(db *metadata.DB) *Records { return &Records{db: db} }

// ResultRecord is what a cache key points at.
type ResultRecord struct {
	Snapshot string // committed snapshot name; "" is the empty tree
	Created  time.Time
	LastUsed time.Time
}

// Layer is the exported form of one committed snapshot's diff.
type Layer struct {
	DiffID digest.Digest
	Blob   ocispec.Descriptor
	// Empty is set when the diff had no entries: no blob is stored.
	Empty bool
	// Created, when set, is when the step that made the layer first ran
	// (a layer from an imported cache keeps its builder's time, so the
	// image's history, and digest, are the same on every machine);
	// otherwise the snapshot's creation time stands for it.
	Created *time.Time `json:",omitempty"`
	// SourceDateEpoch is the SOURCE_DATE_EPOCH (Unix seconds) the layer's
	// file times were clamped to; nil for a layer made without one.
	SourceDateEpoch *int64 `json:",omitempty"`
}

func get[T any](d *metadata.DB, bucket []byte, key string) (*T, error) {
	var out *T
	err := d.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		var t T
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode %s record %s: %w", bucket, key, err)
		}
		out = &t
		return nil
	})
	return out, err
}

func put(d *metadata.DB, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), data)
	})
}

// Result returns the record of key, or nil.
func (r *Records) Result(key digest.Digest) (*ResultRecord, error) {
	return get[ResultRecord](r.db, bucketResults, key.String())
}

// Link returns the cache key that a link key (an op keyed by its inputs'
// cache keys alone) stood for when it was last computed in full.
func (r *Records) Link(link digest.Digest) (digest.Digest, bool, error) {
	k, err := get[digest.Digest](r.db, bucketLinks, link.String())
	if err != nil || k == nil {
		return "", false, err
	}
	return *k, true, nil
}

// SaveLink records that link stands for key.
func (r *Records) SaveLink(link, key digest.Digest) error {
	return put(r.db, bucketLinks, link.String(), key)
}

// DeleteLinksExcept removes the links whose key keep refuses (a prune
// removed its result).
func (r *Records) DeleteLinksExcept(keep func(key digest.Digest) bool) error {
	return deleteWhere(r.db, bucketLinks, func(_, v []byte) bool {
		var key digest.Digest
		return json.Unmarshal(v, &key) != nil || !keep(key)
	})
}

// deleteWhere removes the entries of bucket that drop selects, in one
// transaction.
func deleteWhere(d *metadata.DB, bucket []byte, drop func(k, v []byte) bool) error {
	return d.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if drop(k, v) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// SaveResult points key at a committed snapshot.
func (r *Records) SaveResult(key digest.Digest, snapshot string) error {
	now := time.Now().UTC()
	return put(r.db, bucketResults, key.String(), ResultRecord{Snapshot: snapshot, Created: now, LastUsed: now})
}

// TouchResults marks keys as used now, in one transaction.
func (r *Records) TouchResults(keys []digest.Digest) error {
	if len(keys) == 0 {
		return nil
	}
	now := time.Now().UTC()
	return r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResults)
		if b == nil {
			return nil
		}
		for _, key := range keys {
			v := b.Get([]byte(key.String()))
			if v == nil {
				continue
			}
			var rec ResultRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			rec.LastUsed = now
			data, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(key.String()), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteResult forgets key.
func (r *Records) DeleteResult(key digest.Digest) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketResults); b != nil {
			return b.Delete([]byte(key.String()))
		}
		return nil
	})
}

// Layer returns the layer made from a committed snapshot, or nil.
func (r *Records) Layer(snapshot string) (*Layer, error) {
	return get[Layer](r.db, bucketLayers, snapshot)
}

// SaveLayer records the layer made from a committed snapshot.
func (r *Records) SaveLayer(snapshot string, l Layer) error {
	return put(r.db, bucketLayers, snapshot, l)
}

// Step returns the raw step record saved under id, or nil.
func (r *Records) Step(id string) ([]byte, error) {
	var out []byte
	err := r.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSteps); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, err
}

// SaveStep stores a raw step record under id.
func (r *Records) SaveStep(id string, data []byte) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSteps)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
}

// WalkResults calls fn for every result record. fn runs inside a read
// transaction and must not use the records itself.
func (r *Records) WalkResults(fn func(key digest.Digest, rec ResultRecord) error) error {
	return r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResults)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec ResultRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			return fn(digest.Digest(k), rec)
		})
	})
}

// DeleteLayer forgets the layer record saved under name.
func (r *Records) DeleteLayer(name string) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketLayers); b != nil {
			return b.Delete([]byte(name))
		}
		return nil
	})
}

// WalkLayers calls fn for every layer record with the name it is saved
// under: a committed snapshot's name, with an "@<unix seconds>" suffix for a
// layer made with SOURCE_DATE_EPOCH. fn runs inside a read transaction and
// must not use the records itself.
func (r *Records) WalkLayers(fn func(name string, l Layer) error) error {
	return r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLayers)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var l Layer
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("decode layers record %s: %w", k, err)
			}
			return fn(string(k), l)
		})
	})
}

// Sum returns the raw content checksum saved under key, or nil. Checksums
// of committed snapshots never change, so they are kept by snapshot name.
func (r *Records) Sum(key string) ([]byte, error) {
	var out []byte
	err := r.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSums); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, err
}

// SaveSum stores a raw content checksum under key.
func (r *Records) SaveSum(key string, data []byte) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSums)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), data)
	})
}

// DeleteSumsExcept forgets the snapshot checksums of every snapshot keep
// does not hold.
func (r *Records) DeleteSumsExcept(keep func(snapshot string) bool) error {
	return deleteWhere(r.db, bucketSums, func(k, _ []byte) bool {
		snap, _, _ := strings.Cut(string(k), "\x00")
		return !keep(snap)
	})
}
