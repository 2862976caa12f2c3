package exporter

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/strata-build/strata/internal/compression"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/images"
)

// maxMetaSize bounds the archive's JSON files held in memory.
const maxMetaSize = 64 << 20

// maxLinkHops bounds chains of links inside an archive.
const maxLinkHops = 16

// metaFiles are read into memory instead of the content store.
var metaFiles = map[string]bool{
	"index.json": true, DockerManifestFile: true, ocispec.ImageLayoutFile: true, "repositories": true,
}

// Load reads a docker archive (manifest.json) or an OCI archive (oci-layout
// and index.json), plain, gzip- or zstd-compressed. Every blob goes into cs,
// verified against its digest; files of a docker archive outside blobs/ are
// stored by the digest of their content, and each image gets an OCI manifest
// built from its config and layers (uncompressed layers are checked against
// the config's diff_ids, compressed ones after decompression). When both
// files are present (docker 25), index.json gives the manifests, and
// manifest.json the tags of entries that have no name.
//
// Images are tagged in is (if not nil) with the names the archive gives
// (index.json annotations or RepoTags) and returned in archive order; an
// image the archive does not name is returned once with an empty Name.
func Load(ctx context.Context, r io.Reader, cs *content.Store, is *images.Store) ([]images.Image, error) {
	rd, closeFn, err := decompress(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer closeFn()
	a, err := readArchive(ctx, rd, cs)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var imgs []images.Image
	switch {
	case a.meta["index.json"] != nil:
		imgs, err = a.ociImages(ctx, cs)
	case a.meta[DockerManifestFile] != nil:
		imgs, err = a.dockerImages(ctx, cs)
	default:
		err = errors.New("archive has neither index.json nor manifest.json")
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if is != nil {
		for _, img := range imgs {
			if img.Name == "" {
				continue
			}
			if err := is.Put(ctx, img); err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
		}
	}
	return imgs, nil
}

// decompress returns r uncompressed, whatever compression it came in.
func decompress(r io.Reader) (io.Reader, func(), error) {
	rc, _, err := compression.Decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read archive: %w", err)
	}
	return rc, func() { rc.Close() }, nil
}

// archive is what a pass over an archive leaves: its files as blobs of the
// store, its links, and its JSON metadata.
type archive struct {
	files map[string]content.Info
	links map[string]string
	meta  map[string][]byte
}

func readArchive(ctx context.Context, r io.Reader, cs *content.Store) (*archive, error) {
	a := &archive{files: map[string]content.Info{}, links: map[string]string{}, meta: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			return nil, err
		}
		if isSparse(hdr) {
			// A sparse entry's holes cost no archive bytes: a tiny archive
			// could claim terabytes. Image archives never need them.
			return nil, fmt.Errorf("archive entry %q is a sparse file", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if err := a.addFile(ctx, cs, name, hdr.Size, tr); err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return nil, fmt.Errorf("archive entry %q links to absolute path %q", hdr.Name, hdr.Linkname)
			}
			target, err := cleanPath(path.Join(path.Dir(name), hdr.Linkname))
			if err != nil {
				return nil, fmt.Errorf("archive entry %q links outside the archive: %w", hdr.Name, err)
			}
			a.links[name] = target
		case tar.TypeLink:
			target, err := cleanPath(hdr.Linkname)
			if err != nil {
				return nil, err
			}
			a.links[name] = target
		}
	}
	if v := a.meta[ocispec.ImageLayoutFile]; v != nil {
		var l ocispec.ImageLayout
		if err := json.Unmarshal(v, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("unsupported oci-layout %q", v)
		}
	}
	return a, nil
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// cleanPath checks that an archive path stays inside the archive and returns
// it cleaned.
func cleanPath(name string) (string, error) {
	if path.IsAbs(name) {
		return "", fmt.Errorf("archive entry %q has an absolute path", name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("archive entry %q escapes the archive", name)
	}
	return c, nil
}

func (a *archive) addFile(ctx context.Context, cs *content.Store, name string, size int64, r io.Reader) error {
	if metaFiles[name] {
		if size > maxMetaSize {
			return fmt.Errorf("archive file %s is larger than %d bytes", name, maxMetaSize)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read archive file %s: %w", name, err)
		}
		a.meta[name] = b
		return nil
	}
	if alg, enc, ok := strings.Cut(strings.TrimPrefix(name, "blobs/"), "/"); ok && strings.HasPrefix(name, "blobs/") {
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
		if err := cs.WriteBlob(ctx, r, size, d); err != nil {
			return fmt.Errorf("archive blob %s: %w", name, err)
		}
		a.files[name] = content.Info{Digest: d, Size: size}
		return nil
	}
	w, err := cs.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("read archive file %s: %w", name, err)
	}
	if err := w.Commit(size, w.Digest()); err != nil {
		return fmt.Errorf("store archive file %s: %w", name, err)
	}
	a.files[name] = content.Info{Digest: w.Digest(), Size: size}
	return nil
}

// file returns the stored blob of an archive path, following links.
func (a *archive) file(name string) (content.Info, error) {
	p, err := cleanPath(name)
	if err != nil {
		return content.Info{}, err
	}
	for range maxLinkHops {
		if info, ok := a.files[p]; ok {
			return info, nil
		}
		next, ok := a.links[p]
		if !ok {
			return content.Info{}, fmt.Errorf("archive has no file %q", name)
		}
		p = next
	}
	return content.Info{}, fmt.Errorf("archive file %q: too many links", name)
}

// ociImages lists index.json's entries, checking each one's blobs.
func (a *archive) ociImages(ctx context.Context, cs *content.Store) ([]images.Image, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(a.meta["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("decode index.json: %w", err)
	}
	var tags map[digest.Digest][]string
	if b := a.meta[DockerManifestFile]; b != nil {
		var err error
		if tags, err = a.repoTagsByConfig(b); err != nil {
			return nil, err
		}
	}
	var out []images.Image
	for _, d := range idx.Manifests {
		if _, err := closure(ctx, cs, d); err != nil {
			return nil, err
		}
		target := plain(d)
		name, err := nameFromAnnotations(d.Annotations)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %s: %w", d.Digest, err)
		}
		names := []string{name}
		if name == "" && tags != nil {
			if r, err := images.Resolve(ctx, cs, target, ocispec.Platform{}); err == nil && len(tags[r.Manifest.Config.Digest]) > 0 {
				names = tags[r.Manifest.Config.Digest]
			}
		}
		for _, n := range names {
			out = append(out, images.Image{Name: n, Target: target})
		}
	}
	return out, nil
}

// repoTagsByConfig maps each manifest.json entry's config digest to its
// normalized tags.
func (a *archive) repoTagsByConfig(b []byte) (map[digest.Digest][]string, error) {
	var ms []DockerManifestEntry
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("decode manifest.json: %w", err)
	}
	out := map[digest.Digest][]string{}
	for _, m := range ms {
		info, err := a.file(m.Config)
		if err != nil {
			return nil, err
		}
		names, err := normalizeAll(m.RepoTags)
		if err != nil {
			return nil, err
		}
		out[info.Digest] = append(out[info.Digest], names...)
	}
	return out, nil
}

func normalizeAll(refs []string) ([]string, error) {
	var out []string
	for _, t := range refs {
		n, err := images.Normalize(t)
		if err != nil {
			return nil, fmt.Errorf("manifest.json tag: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// dockerImages builds an OCI manifest for each manifest.json entry.
func (a *archive) dockerImages(ctx context.Context, cs *content.Store) ([]images.Image, error) {
	var ms []DockerManifestEntry
	if err := json.Unmarshal(a.meta[DockerManifestFile], &ms); err != nil {
		return nil, fmt.Errorf("decode manifest.json: %w", err)
	}
	if len(ms) == 0 {
		return nil, errors.New("manifest.json lists no images")
	}
	var out []images.Image
	for _, m := range ms {
		desc, err := a.manifestFor(ctx, cs, m)
		if err != nil {
			return nil, err
		}
		names, err := normalizeAll(m.RepoTags)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			out = append(out, images.Image{Name: n, Target: desc})
		}
	}
	return out, nil
}

func (a *archive) manifestFor(ctx context.Context, cs *content.Store, m DockerManifestEntry) (ocispec.Descriptor, error) {
	cfgInfo, err := a.file(m.Config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var cfg ocispec.Image
	if err := readJSON(ctx, cs, cfgInfo.Digest, &cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("image config %s: %w", m.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return ocispec.Descriptor{}, fmt.Errorf("image config %s lists %d diff_ids for %d layers", m.Config, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgInfo.Digest, Size: cfgInfo.Size},
		Layers:    []ocispec.Descriptor{},
	}
	for i, lp := range m.Layers {
		info, err := a.file(lp)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		mt, err := checkLayer(ctx, cs, info, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %s: %w", lp, err)
		}
		man.Layers = append(man.Layers, ocispec.Descriptor{MediaType: mt, Digest: info.Digest, Size: info.Size})
	}
	b, err := json.Marshal(man)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encode manifest: %w", err)
	}
	return cs.Put(ctx, ocispec.MediaTypeImageManifest, b)
}

// checkLayer verifies that the layer blob uncompresses to diffID and returns
// its OCI media type.
func checkLayer(ctx context.Context, cs *content.Store, info content.Info, diffID digest.Digest) (string, error) {
	f, err := cs.Open(ctx, info.Digest)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rd, kind, err := compression.Decompress(f)
	if err != nil {
		return "", fmt.Errorf("read layer: %w", err)
	}
	defer rd.Close()
	var mt string
	switch kind {
	case compression.None:
		mt = ocispec.MediaTypeImageLayer
	case compression.Gzip:
		mt = ocispec.MediaTypeImageLayerGzip
	case compression.Zstd:
		mt = ocispec.MediaTypeImageLayerZstd
	default:
		return "", fmt.Errorf("layer %s is %s-compressed: OCI images take gzip, zstd or plain layers", info.Digest, kind)
	}
	if mt == ocispec.MediaTypeImageLayer && info.Digest == diffID {
		return mt, nil
	}
	dg := digest.SHA256.Digester()
	if _, err := io.Copy(dg.Hash(), rd); err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	if got := dg.Digest(); got != diffID {
		return "", fmt.Errorf("uncompressed digest %s does not match diff_id %s", got, diffID)
	}
	return mt, nil
}
