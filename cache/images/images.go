// Package images is strata's local image store: it maps image names to the
// descriptor of a manifest (or index) held in the content store, like the
// index.json of an OCI layout but shared by every process using one root.
//
// Vocabulary:
//   - A name is a normalized reference ("docker.io/library/busybox:latest",
//     see Normalize); the familiar form ("busybox:latest") is only for display.
//   - An Image is one name and its Target descriptor. Several names may point
//     at one target; tagging is a Put, untagging a Delete. Blobs are never
//     touched here: the garbage collector treats targets as roots.
//   - Resolve follows a target through the content store to one platform's
//     manifest and config.
//
// Records live in the metadata DB's "images" bucket, keyed by name, as JSON.
package images

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

var bucketName = []byte("images")

// Image is a name and the manifest or index it points at.
type Image struct {
	Name    string
	Target  ocispec.Descriptor
	Created time.Time
	Updated time.Time
}

// Store keeps images in a metadata DB.
type Store struct {
	db  *metadata.DB
	now func() time.Time
}

// NewStore returns the image store of db.
func NewStore(db *metadata.DB) *Store {
	return &Store{db: db, now: time.Now}
}

// Put tags img.Target with img.Name (normalized first). Retagging a name keeps
// its original Created time unless img sets one; Updated is set to now when
// zero. Created defaults to now for a new name.
func (s *Store) Put(ctx context.Context, img Image) error {
	name, err := Normalize(img.Name)
	if err != nil {
		return fmt.Errorf("tag image: %w", err)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return fmt.Errorf("tag image %s: invalid target digest %q: %w", name, img.Target.Digest, err)
	}
	img.Name = name
	now := s.now().UTC()
	if img.Updated.IsZero() {
		img.Updated = now
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return fmt.Errorf("tag image %s: %w", name, err)
		}
		if img.Created.IsZero() {
			img.Created = now
			if old := b.Get([]byte(name)); old != nil {
				var prev Image
				if json.Unmarshal(old, &prev) == nil && !prev.Created.IsZero() {
					img.Created = prev.Created
				}
			}
		}
		v, err := json.Marshal(img)
		if err != nil {
			return fmt.Errorf("tag image %s: %w", name, err)
		}
		return b.Put([]byte(name), v)
	})
}

// Get returns the image tagged name (normalized first).
func (s *Store) Get(ctx context.Context, name string) (Image, error) {
	n, err := Normalize(name)
	if err != nil {
		return Image{}, err
	}
	var img Image
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		var v []byte
		if b != nil {
			v = b.Get([]byte(n))
		}
		if v == nil {
			return fmt.Errorf("image %q: %w", n, errdefs.ErrNotFound)
		}
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("decode image record %s: %w", n, err)
		}
		return nil
	})
	return img, err
}

// List returns every image, sorted by name.
func (s *Store) List(ctx context.Context) ([]Image, error) {
	var imgs []Image
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var img Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("decode image record %s: %w", k, err)
			}
			imgs = append(imgs, img)
			return nil
		})
	})
	return imgs, err
}

// Delete untags name (normalized first).
func (s *Store) Delete(ctx context.Context, name string) error {
	n, err := Normalize(name)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if b == nil || b.Get([]byte(n)) == nil {
			return fmt.Errorf("untag image %q: %w", n, errdefs.ErrNotFound)
		}
		return b.Delete([]byte(n))
	})
}
