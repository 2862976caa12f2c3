package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/atomicfile"
	"github.com/strata-build/strata/registry"
)

// Image is a stored image name and what it points to.
type Image = images.Image

// Summary is one line of `strata images`.
type Summary struct {
	Image
	// Size is the config's and the layers' compressed size for the
	// requested platform; -1 when the store does not hold that platform.
	Size int64
	// ID is the image ID, the config's digest, for the requested platform
	// ("" when the store does not hold it).
	ID digest.Digest
	// Labels are the config's labels for the requested platform.
	Labels map[string]string
}

// Image looks up one name (a name as the user typed it, normalized here).
// The error wraps errdefs.ErrNotFound when the store has no such name.
func (s *Store) Image(ctx context.Context, name string) (Image, error) {
	img, err := s.images.Get(ctx, name)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", name, err)
	}
	return img, nil
}

// Images lists every stored name with its size for platform.
func (s *Store) Images(ctx context.Context, platform ocispec.Platform) ([]Summary, error) {
	list, err := s.images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(list))
	for _, img := range list {
		sum := Summary{Image: img, Size: -1}
		if res, err := images.Resolve(ctx, s.content, img.Target, platform); err == nil {
			sum.ID = res.Manifest.Config.Digest
			sum.Labels = res.Config.Config.Labels
			sum.Size = res.Manifest.Config.Size
			for _, l := range res.Manifest.Layers {
				sum.Size += l.Size
			}
		}
		out = append(out, sum)
	}
	return out, nil
}

// Names lists the image names stored under root, sorted, without opening
// the store: nothing is created, locked beyond one read of the metadata or
// swept, and a root that holds no store has no names. It is for shell
// completion, which runs on a key press and must not wait or write.
func Names(ctx context.Context, root string) ([]string, error) {
	path := filepath.Join(root, metadataFile)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	db, err := metadata.Open(path) // an existing, non-empty file is not written
	if err != nil {
		return nil, err
	}
	list, err := images.NewStore(db).List(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(list))
	for i, img := range list {
		names[i] = img.Name
	}
	return names, nil
}

// Tag gives the image named src the name dst as well.
func (s *Store) Tag(ctx context.Context, src, dst string) error {
	img, err := s.Image(ctx, src)
	if err != nil {
		return err
	}
	if img.Name, err = images.Normalize(dst); err != nil {
		return fmt.Errorf("tag %s: %w", dst, err)
	}
	img.Updated = time.Now().UTC()
	return s.images.Put(ctx, img)
}

// Untag removes a name; the content stays until a prune.
func (s *Store) Untag(ctx context.Context, name string) error {
	if err := s.images.Delete(ctx, name); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Resolve finds the manifest and config of a stored image for platform.
func (s *Store) Resolve(ctx context.Context, name string, platform ocispec.Platform) (*images.Resolved, error) {
	img, err := s.Image(ctx, name)
	if err != nil {
		return nil, err
	}
	res, err := images.Resolve(ctx, s.content, img.Target, platform)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	res.Name = img.Name
	return res, nil
}

// HistoryEntry is one step of an image's history with the size of the
// layer it made (0 for a step that made none).
type HistoryEntry struct {
	ocispec.History
	Size int64
}

// History lists an image's history, oldest first, with layer sizes.
func (s *Store) History(ctx context.Context, name string, platform ocispec.Platform) ([]HistoryEntry, error) {
	res, err := s.Resolve(ctx, name, platform)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryEntry, len(res.Config.History))
	next := 0 // layer-making entries take the manifest's layers in order
	for i, h := range res.Config.History {
		out[i].History = h
		if !h.EmptyLayer && next < len(res.Manifest.Layers) {
			out[i].Size = res.Manifest.Layers[next].Size
			next++
		}
	}
	return out, nil
}

// Save writes the named images as one docker archive to w.
func (s *Store) Save(ctx context.Context, names []string, w io.Writer) error {
	imgs := make([]images.Image, 0, len(names))
	for _, n := range names {
		img, err := s.Image(ctx, n)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	return exporter.Save(ctx, s.content, imgs, w)
}

// SaveFile is Save to a file that appears whole or not at all.
func (s *Store) SaveFile(ctx context.Context, names []string, path string) error {
	f, err := atomicfile.New(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.Save(ctx, names, f); err != nil {
		return err
	}
	return f.Commit()
}

// Load stores the images of a docker or OCI archive (plain or compressed)
// and tags the names it carries. Every blob is verified as it streams in.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Image, error) {
	return exporter.Load(ctx, r, s.content, s.images)
}

// Export writes the filesystem of a stored image for platform as one tar.
func (s *Store) Export(ctx context.Context, name string, out exporter.RootfsTar) error {
	img, err := s.Image(ctx, name)
	if err != nil {
		return err
	}
	_, err = out.Export(ctx, exporter.Source{Content: s.content, Images: s.images, Manifest: img.Target})
	return err
}

// PullOptions is what Pull fetches and how it reaches the registry.
type PullOptions struct {
	Platform ocispec.Platform
	// Registry says how hosts are reached; its Sources is the store's.
	Registry registry.Options
}

// Pull fetches ref from its registry into the store and tags it.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (registry.Result, error) {
	ro := opts.Registry
	ro.Sources = s.sources
	return registry.New(s.content, s.images, ro).Pull(ctx, ref, opts.Platform)
}

// PullMetadata fetches ref's manifests and config into the store, without
// its layers and without a tag (registry.Puller.Resolve): what a build
// needs to key its steps on a base image whose layers it may never read.
func (s *Store) PullMetadata(ctx context.Context, ref string, opts PullOptions) (registry.Result, error) {
	ro := opts.Registry
	ro.Sources = s.sources
	return registry.New(s.content, s.images, ro).Resolve(ctx, ref, opts.Platform)
}

// Push sends the stored image name to its registry under the same name.
// Blobs the registry has are skipped, those in another repository of the
// same registry mounted.
func (s *Store) Push(ctx context.Context, name string, opts registry.Options) (registry.PushResult, error) {
	img, err := s.Image(ctx, name)
	if err != nil {
		return registry.PushResult{}, err
	}
	opts.Sources = s.sources
	return registry.NewPusher(s.content, opts).Push(ctx, img.Target, []string{img.Name})
}

// layers is the store's layer maker.
func (s *Store) layers() *cache.Layers {
	return &cache.Layers{Snapshotter: s.snapshotter, Content: s.content, Records: s.records, TempDir: s.tmp}
}
