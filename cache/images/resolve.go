package images

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
)

// Media types of the Docker v2 schema 2 formats, read like their OCI twins.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// maxIndexDepth bounds nested indexes so a cyclic graph cannot loop.
const maxIndexDepth = 4

// Resolved is one platform's manifest and config of an image.
type Resolved struct {
	// Name is the image name recorded on the descriptor
	// (io.containerd.image.name or org.opencontainers.image.ref.name), if any;
	// callers that know the name set it themselves.
	Name         string
	Manifest     ocispec.Manifest
	ManifestDesc ocispec.Descriptor
	Config       ocispec.Image
	ConfigBytes  []byte
}

// IsIndex reports whether mediaType names an OCI index or a Docker manifest list.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// IsManifest reports whether mediaType names an OCI or Docker image manifest.
func IsManifest(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// DefaultPlatform fills an empty OS with linux and an empty architecture with
// the runtime's.
func DefaultPlatform(p ocispec.Platform) ocispec.Platform {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	return p
}

// Resolve reads the manifest and config that desc leads to. If desc is an
// index, the manifest for platform is chosen (see DefaultPlatform); a
// manifest is taken as it is, whatever its platform.
func Resolve(ctx context.Context, cs *content.Store, desc ocispec.Descriptor, platform ocispec.Platform) (*Resolved, error) {
	platform = DefaultPlatform(platform)
	name := descName(desc)
	for range maxIndexDepth {
		b, err := cs.ReadBlob(ctx, desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", desc.Digest, err)
		}
		mt := desc.MediaType
		if mt == "" {
			mt = SniffMediaType(b)
		}
		switch {
		case IsIndex(mt):
			var idx ocispec.Index
			if err := json.Unmarshal(b, &idx); err != nil {
				return nil, fmt.Errorf("resolve %s: decode index: %w", desc.Digest, err)
			}
			next, ok := MatchPlatform(idx.Manifests, platform)
			if !ok {
				return nil, fmt.Errorf("resolve %s: no manifest for platform %s in index", desc.Digest, PlatformString(platform))
			}
			desc = next
		case IsManifest(mt):
			return resolveManifest(ctx, cs, desc, b, name)
		default:
			return nil, fmt.Errorf("resolve %s: unsupported media type %q", desc.Digest, mt)
		}
	}
	return nil, fmt.Errorf("resolve %s: indexes nested deeper than %d", desc.Digest, maxIndexDepth)
}

func resolveManifest(ctx context.Context, cs *content.Store, desc ocispec.Descriptor, b []byte, name string) (*Resolved, error) {
	r := &Resolved{Name: name, ManifestDesc: desc}
	if err := json.Unmarshal(b, &r.Manifest); err != nil {
		return nil, fmt.Errorf("resolve %s: decode manifest: %w", desc.Digest, err)
	}
	if r.ManifestDesc.MediaType == "" {
		r.ManifestDesc.MediaType = SniffMediaType(b)
	}
	cfg, err := cs.ReadBlob(ctx, r.Manifest.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: config: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(cfg, &r.Config); err != nil {
		return nil, fmt.Errorf("resolve %s: decode config %s: %w", desc.Digest, r.Manifest.Config.Digest, err)
	}
	r.ConfigBytes = cfg
	return r, nil
}

// SniffMediaType reads the mediaType field of a manifest or index, or
// guesses from its shape when the field is absent; "" if it is neither.
func SniffMediaType(b []byte) string {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Config    json.RawMessage   `json:"config"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

func descName(d ocispec.Descriptor) string {
	if n := d.Annotations["io.containerd.image.name"]; n != "" {
		return n
	}
	return d.Annotations[ocispec.AnnotationRefName]
}

// MatchPlatform picks the manifest for p among an index's entries: OS and
// architecture must be equal; a variant in p must match (arm64 treats "" and
// "v8" alike); with no variant in p, an entry without one is preferred, then
// the first. Entries without a platform (attestations) never match.
func MatchPlatform(ms []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, bool) {
	var fallback *ocispec.Descriptor
	for i, m := range ms {
		if m.Platform == nil || m.Platform.OS != p.OS || m.Platform.Architecture != p.Architecture {
			continue
		}
		if !IsManifest(m.MediaType) && !IsIndex(m.MediaType) && m.MediaType != "" {
			continue
		}
		want, got := normVariant(p.Architecture, p.Variant), normVariant(p.Architecture, m.Platform.Variant)
		switch {
		case want == got:
			return m, true
		case p.Variant == "" && fallback == nil:
			fallback = &ms[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return ocispec.Descriptor{}, false
}

func normVariant(arch, v string) string {
	if arch == "arm64" && v == "v8" {
		return ""
	}
	return v
}

// PlatformString formats p as os/arch[/variant].
func PlatformString(p ocispec.Platform) string {
	s := []string{p.OS, p.Architecture}
	if p.Variant != "" {
		s = append(s, p.Variant)
	}
	return strings.Join(s, "/")
}
