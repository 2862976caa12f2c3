package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/registry"
	"github.com/strata-build/strata/remotecache"
	"github.com/strata-build/strata/solver"
	"github.com/strata-build/strata/solver/ops"
	"github.com/strata-build/strata/store"
)

// CacheSpec is one --cache-from or --cache-to, as buildx spells them.
type CacheSpec struct {
	// Type is "registry", "local" or "inline".
	Type string
	// Ref is a registry cache's name (type=registry,ref=...), normalized.
	Ref string
	// Dir is a local cache's OCI layout (src= to import, dest= to export).
	Dir string
	// Tag names the cache in the layout; "" is remotecache.DefaultTag.
	Tag string
	// Mode is what an export holds: "min" (the final image's steps, the
	// default) or "max" (every step of every stage).
	Mode string
	// IgnoreError makes a failed export a warning.
	IgnoreError bool
	// Insecure lets the cache's registry be reached over plain HTTP or
	// unverified TLS.
	Insecure bool
}

func (c CacheSpec) String() string {
	switch c.Type {
	case "registry":
		return "registry " + c.Ref
	case "local":
		return "local " + c.Dir
	}
	return c.Type
}

// importCaches reads the records of every --cache-from into one index. A
// cache that cannot be read is a warning, as in buildx: the build runs
// without it.
func importCaches(ctx context.Context, specs []CacheSpec, ropts registry.Options, sink progress.Sink, warn io.Writer) *remotecache.Index {
	ix := remotecache.NewIndex(solver.KeyVersion)
	for _, spec := range specs {
		start := time.Now()
		cfg, src, err := readCache(ctx, spec, ropts)
		if err == nil {
			err = ix.Add(cfg, src)
		}
		phase(sink, fmt.Sprintf("import cache from %s", spec), start, 0, err)
		if err != nil {
			fmt.Fprintf(warn, "WARNING: cache import from %s: %v\n", spec, err)
		}
	}
	return ix
}

func readCache(ctx context.Context, spec CacheSpec, ropts registry.Options) (remotecache.Config, remotecache.BlobSource, error) {
	switch spec.Type {
	case "local":
		return remotecache.ImportLocal(ctx, spec.Dir, tagOr(spec.Tag))
	case "registry":
		if spec.Insecure {
			ropts = ropts.WithInsecure(spec.Ref)
		}
		return remotecache.ImportRegistry(ctx, ropts, spec.Ref)
	}
	return remotecache.Config{}, nil, fmt.Errorf("unknown cache type %q", spec.Type)
}

func tagOr(t string) string {
	if t == "" {
		return remotecache.DefaultTag
	}
	return t
}

// cacheEntries are the records a --cache-to exports: the results this build
// used (mode=max) or those of the final image's chain (mode=min), each with
// its layers, plus the imported records of steps this build did not reach
// (a fully cached build reaches only the last step of each chain), so an
// unchanged build exports an unchanged cache. carried are those last ones.
func cacheEntries(ctx context.Context, chains *layerChains, cs *ops.CacheStore, root *ops.Ref, max bool, ix *remotecache.Index) ([]remotecache.Entry, []remotecache.Imported, error) {
	finalLayers, finalNames, err := chains.result(ctx, root)
	if err != nil {
		return nil, nil, err
	}
	final := map[string]bool{"": true}
	for _, n := range finalNames {
		final[n] = true
	}
	finalBlobs := map[string]bool{}
	for _, l := range finalLayers {
		finalBlobs[l.Blob.Digest.String()] = true
	}
	var out []remotecache.Entry
	seenKey, seenStep := map[string]bool{}, map[string]bool{}
	for _, u := range cs.UsedResults() {
		step := unscoped(u.Step)
		if step != "" {
			seenStep[step] = true
		}
		if !max && !final[u.Ref.Snapshot] {
			continue
		}
		if seenKey[u.Key.String()] {
			continue
		}
		seenKey[u.Key.String()] = true
		ls, _, err := chains.used(ctx, u.Ref)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, remotecache.Entry{Key: u.Key, Step: step, Layers: ls})
	}
	var carried []remotecache.Imported
	if ix == nil {
		return out, nil, nil
	}
	for _, im := range ix.Entries() {
		if seenKey[im.Key.String()] || (im.Step != "" && seenStep[im.Step]) {
			continue // this build made or used that step's result anew
		}
		if !max && !allIn(im.Layers, finalBlobs) {
			continue // mode=min keeps the final image's steps only
		}
		carried = append(carried, im)
		out = append(out, im.Entry)
	}
	return out, carried, nil
}

// layerChains gives the layers of results, base first, empty ones
// included, each dated (when it has no date of its own) by its snapshot's
// creation, and made for epoch (SOURCE_DATE_EPOCH, when set). Each
// snapshot is read once (its record and its layer record), so the results
// of a deep build cost one walk in all, not one per result.
type layerChains struct {
	ls    *cache.Layers
	epoch *time.Time
	own   map[string]ownLayer
}

func newLayerChains(ls *cache.Layers, epoch *time.Time) *layerChains {
	return &layerChains{ls: ls, epoch: epoch, own: map[string]ownLayer{}}
}

// ownLayer is one snapshot's parent and layer.
type ownLayer struct {
	parent string
	layer  cache.Layer
}

func (c *layerChains) read(ctx context.Context, name string) (ownLayer, error) {
	if o, ok := c.own[name]; ok {
		return o, nil
	}
	info, err := c.ls.Snapshotter.Stat(ctx, name)
	if err != nil {
		return ownLayer{}, fmt.Errorf("stat snapshot %s: %w", name, err)
	}
	l, err := c.ls.Of(ctx, name, info.Parent, c.epoch)
	if err != nil {
		return ownLayer{}, fmt.Errorf("layer of %s: %w", name, err)
	}
	if l.Created == nil {
		created := info.Created.UTC()
		l.Created = &created
	}
	o := ownLayer{parent: info.Parent, layer: *l}
	c.own[name] = o
	return o, nil
}

// of lists the layers of name's chain and the snapshots' names, base
// first ("" has none).
func (c *layerChains) of(ctx context.Context, name string) ([]cache.Layer, []string, error) {
	var layers []cache.Layer
	var names []string
	for name != "" {
		o, err := c.read(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, o.layer)
		names = append(names, name)
		name = o.parent
	}
	slices.Reverse(layers)
	slices.Reverse(names)
	return layers, names, nil
}

// used is the layers of a result for a cache record: a lazy result's own
// (they are what the record it came from holds), else its chain's.
func (c *layerChains) used(ctx context.Context, r *ops.Ref) ([]cache.Layer, []string, error) {
	if ls, ok := r.Layers(); ok {
		return ls, ops.ChainNames(ls), nil
	}
	return c.of(ctx, r.Snapshot)
}

// result is the layers of the image of r: a lazy result's own when they
// were made for this build's epoch and no compression is forced (their
// blobs need not be here), else its chain's, r being unpacked first if it
// is lazy.
func (c *layerChains) result(ctx context.Context, r *ops.Ref) ([]cache.Layer, []string, error) {
	if ls, ok := r.Layers(); ok && madeFor(ls, c.epoch) && !c.ls.ForceCompression {
		return ls, ops.ChainNames(ls), nil
	}
	if err := r.Ready(ctx); err != nil {
		return nil, nil, err
	}
	return c.of(ctx, r.Snapshot)
}

// madeFor reports whether layers can make the image of a build with epoch:
// each dated (a cache record's are; a base image's, which its snapshot's
// creation dates, are not) and with its times clamped to epoch or, without
// one, unclamped.
func madeFor(layers []cache.Layer, epoch *time.Time) bool {
	for _, l := range layers {
		switch {
		case l.Created == nil:
			return false
		case epoch == nil && l.SourceDateEpoch != nil:
			return false
		case epoch != nil && (l.SourceDateEpoch == nil || *l.SourceDateEpoch != epoch.Unix()):
			return false
		}
	}
	return true
}

// cacheLinks are the links to export: those of this build, and the
// imported ones (Encode keeps those whose key it exports).
func cacheLinks(cs *ops.CacheStore, ix *remotecache.Index) map[digest.Digest]digest.Digest {
	links := cs.UsedLinks()
	if ix != nil {
		for l, k := range ix.Links() {
			if _, ok := links[l]; !ok {
				links[l] = k
			}
		}
	}
	return links
}

// allIn reports whether every non-empty layer's blob is in set.
func allIn(ls []cache.Layer, set map[string]bool) bool {
	for _, l := range ls {
		if !l.Empty && !set[l.Blob.Digest.String()] {
			return false
		}
	}
	return true
}

// unscoped is a step ID without the build's scope prefix (see scopeSteps):
// caches travel between checkouts at other paths.
func unscoped(step string) string {
	_, rest, ok := strings.Cut(step, "/")
	if !ok {
		return step
	}
	return rest
}

// exportCaches writes every --cache-to but inline ones. A failure fails
// the build unless the spec says ignore-error. Layers the store lacks come
// from where lazy says they are.
func exportCaches(ctx context.Context, parts store.Parts, chains *layerChains, specs []CacheSpec, cs *ops.CacheStore, root *ops.Ref, ix *remotecache.Index, lazy *remotecache.Blobs, ropts registry.Options, sink progress.Sink, warn io.Writer) error {
	for _, spec := range specs {
		if spec.Type == "inline" {
			continue
		}
		start := time.Now()
		err := exportCache(ctx, parts, chains, spec, cs, root, ix, lazy, ropts)
		phase(sink, fmt.Sprintf("export cache to %s", spec), start, 0, err)
		if err != nil && spec.IgnoreError {
			fmt.Fprintf(warn, "WARNING: cache export to %s: %v\n", spec, err)
			err = nil
		}
		if err != nil {
			return fmt.Errorf("cache export to %s: %w", spec, err)
		}
	}
	return nil
}

func exportCache(ctx context.Context, parts store.Parts, chains *layerChains, spec CacheSpec, cs *ops.CacheStore, root *ops.Ref, ix *remotecache.Index, lazy *remotecache.Blobs, ropts registry.Options) error {
	entries, carried, err := cacheEntries(ctx, chains, cs, root, spec.Mode == "max", ix)
	if err != nil {
		return err
	}
	cfg := remotecache.Encode(solver.KeyVersion, entries, cacheLinks(cs, ix))
	switch spec.Type {
	case "local":
		return remotecache.ExportLocal(ctx, parts.Content, spec.Dir, tagOr(spec.Tag), cfg, lazy)
	case "registry":
		if spec.Insecure {
			ropts = ropts.WithInsecure(spec.Ref)
		}
		err := remotecache.ExportRegistry(ctx, parts.Content, ropts, spec.Ref, cfg, lazy)
		if err != nil && len(carried) > 0 {
			// A registry that dropped a carried layer refuses the manifest:
			// export this build's own records.
			own := entries[:len(entries)-len(carried)] // cacheEntries puts carried records last
			cfg = remotecache.Encode(solver.KeyVersion, own, cacheLinks(cs, ix))
			if rerr := remotecache.ExportRegistry(ctx, parts.Content, ropts, spec.Ref, cfg, lazy); rerr != nil {
				return errors.Join(err, rerr)
			}
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown cache type %q", spec.Type)
}

// inlineCache is the config key of an inline cache: the final image's
// records, whose layers are the image's own.
func inlineCache(ctx context.Context, chains *layerChains, cs *ops.CacheStore, root *ops.Ref, ix *remotecache.Index) (map[string]json.RawMessage, error) {
	entries, _, err := cacheEntries(ctx, chains, cs, root, false, ix)
	if err != nil {
		return nil, err
	}
	b, err := remotecache.Encode(solver.KeyVersion, entries, cacheLinks(cs, ix)).Marshal()
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{remotecache.InlineKey: b}, nil
}
