// Package remotecache moves the build cache between machines: a build
// exports the results it used (--cache-to) and another build, on an empty
// store, imports them (--cache-from) and runs no step whose inputs are
// unchanged.
//
// Vocabulary:
//   - A Record is one solver result: its cache key, the step it came from,
//     and its filesystem as a chain of layers (base first). Layers are OCI
//     layer blobs with their diff IDs, exactly the blobs the store already
//     makes for images, so a cache and an image share blobs (and a registry
//     mounts rather than stores them twice).
//   - A Config lists the records and, once each, the layers they use. It is
//     the config blob of an OCI image manifest whose layers are those blobs
//     (artifact type ArtifactType): any OCI registry and any OCI layout holds
//     it, and a registry's garbage collector keeps its blobs.
//   - Inline, the Config rides in the built image's config under InlineKey,
//     its layers being the image's own (mode=min only).
//
// The config is deterministic (records sorted by key, layers in first-use
// order), so an unchanged cache gives the same manifest digest and an
// export that finds that digest under its ref writes nothing.
//
// Importing reads the manifest and the config only (two requests for a
// registry); a layer blob is fetched when a record that needs it is hit,
// never before.
package remotecache

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
)

// Media types of the cache artifact.
const (
	ArtifactType    = "application/vnd.strata.cache.v1"
	MediaTypeConfig = "application/vnd.strata.cache.config.v1+json"
	// InlineKey is the image config key of an inline cache.
	InlineKey = "strata.cache.v1"
)

// Config is the cache's description: records and the layers they use.
type Config struct {
	// KeyVersion is the solver's key format; records of another are unusable.
	KeyVersion string   `json:"keyVersion"`
	Layers     []Layer  `json:"layers"`
	Records    []Record `json:"records"`
	// Links map link keys to the keys they stood for (see solver.Linker):
	// with them a machine knows the key of a COPY --from a cached stage
	// without fetching that stage.
	Links []Link `json:"links,omitempty"`
}

// Link is one link key and the cache key it stood for.
type Link struct {
	Link digest.Digest `json:"link"`
	Key  digest.Digest `json:"key"`
}

// Layer is one layer blob with its diff ID and when its step first ran
// (the image history's date for it). An empty layer (a step that changed
// no file) has no blob: it keeps the step's place in the chain, so that an
// image made from the record marks that step's history entry empty.
type Layer struct {
	Blob    ocispec.Descriptor `json:"blob"`
	DiffID  digest.Digest      `json:"diffID"`
	Empty   bool               `json:"empty,omitempty"`
	Created *time.Time         `json:"created,omitempty"`
	// SourceDateEpoch is the SOURCE_DATE_EPOCH the layer's times were
	// clamped to, if any.
	SourceDateEpoch *int64 `json:"sourceDateEpoch,omitempty"`
}

// blobs are the blobs of layers, each once, as manifest descriptors.
func blobs(layers []Layer) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, len(layers))
	seen := map[digest.Digest]bool{}
	for _, l := range layers {
		if !l.Empty && !seen[l.Blob.Digest] {
			seen[l.Blob.Digest] = true
			out = append(out, l.Blob)
		}
	}
	return out
}

// Record is one result: its key, its step (unscoped step ID, "" for
// unnamed vertices) and its chain: indexes into Config.Layers, base first.
type Record struct {
	Key   digest.Digest `json:"key"`
	Step  string        `json:"step,omitempty"`
	Chain []int         `json:"chain"`
}

// Entry is a record with its layers, as a build hands it to Encode and as
// Lookup returns it.
type Entry struct {
	Key    digest.Digest
	Step   string
	Layers []cache.Layer // base first, empty ones included
}

// Encode makes the deterministic Config of entries (one per key: the first
// wins) and links (sorted; only those whose key is among the entries').
func Encode(keyVersion string, entries []Entry, links map[digest.Digest]digest.Digest) Config {
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return cmp.Compare(a.Key, b.Key) })
	cfg := Config{KeyVersion: keyVersion, Layers: []Layer{}, Records: []Record{}}
	index := map[string]int{}
	for i, e := range sorted {
		if i > 0 && sorted[i-1].Key == e.Key {
			continue
		}
		rec := Record{Key: e.Key, Step: e.Step, Chain: []int{}}
		for _, l := range e.Layers {
			// One entry per blob and date: two steps can make the same
			// bytes (a COPY of a file as a RUN wrote it) at other times.
			id := l.Blob.Digest.String()
			if l.Empty {
				id = "empty " + l.DiffID.String()
			}
			if l.Created != nil {
				id += " " + l.Created.UTC().Format(time.RFC3339Nano)
			}
			n, ok := index[id]
			if !ok {
				n = len(cfg.Layers)
				index[id] = n
				out := Layer{DiffID: l.DiffID, Empty: l.Empty, Created: utc(l.Created), SourceDateEpoch: l.SourceDateEpoch}
				if !l.Empty {
					out.Blob = plainDesc(l.Blob)
				}
				cfg.Layers = append(cfg.Layers, out)
			}
			rec.Chain = append(rec.Chain, n)
		}
		cfg.Records = append(cfg.Records, rec)
	}
	keys := make(map[digest.Digest]bool, len(cfg.Records))
	for _, r := range cfg.Records {
		keys[r.Key] = true
	}
	for l, k := range links {
		if keys[k] {
			cfg.Links = append(cfg.Links, Link{Link: l, Key: k})
		}
	}
	slices.SortFunc(cfg.Links, func(a, b Link) int { return cmp.Compare(a.Link, b.Link) })
	return cfg
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// plainDesc keeps what a layer descriptor needs.
func plainDesc(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}

// Decode reads a Config and checks that every chain index names a layer.
func Decode(b []byte) (Config, error) {
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("decode cache config: %w", err)
	}
	for _, r := range cfg.Records {
		if err := r.Key.Validate(); err != nil {
			return Config{}, fmt.Errorf("cache record key: %w", err)
		}
		for _, i := range r.Chain {
			if i < 0 || i >= len(cfg.Layers) {
				return Config{}, fmt.Errorf("cache record %s names layer %d of %d", r.Key, i, len(cfg.Layers))
			}
		}
	}
	for _, l := range cfg.Links {
		if l.Link.Validate() != nil || l.Key.Validate() != nil {
			return Config{}, fmt.Errorf("cache link %s -> %s: invalid digest", l.Link, l.Key)
		}
	}
	for _, l := range cfg.Layers {
		if l.Empty {
			if l.Blob.Digest != "" {
				return Config{}, fmt.Errorf("cache layer %s: empty, with a blob", l.Blob.Digest)
			}
		} else if err := l.Blob.Digest.Validate(); err != nil {
			return Config{}, fmt.Errorf("cache layer: %w", err)
		}
		if err := l.DiffID.Validate(); err != nil {
			return Config{}, fmt.Errorf("cache layer %s diff id: %w", l.Blob.Digest, err)
		}
	}
	return cfg, nil
}

// Entries expands the records of cfg.
func (cfg Config) Entries() []Entry {
	out := make([]Entry, 0, len(cfg.Records))
	for _, r := range cfg.Records {
		e := Entry{Key: r.Key, Step: r.Step}
		for _, i := range r.Chain {
			l := cfg.Layers[i]
			e.Layers = append(e.Layers, cache.Layer{DiffID: l.DiffID, Blob: l.Blob, Empty: l.Empty, Created: l.Created, SourceDateEpoch: l.SourceDateEpoch})
		}
		out = append(out, e)
	}
	return out
}

// Marshal is the config's blob.
func (cfg Config) Marshal() ([]byte, error) { return json.Marshal(cfg) }
