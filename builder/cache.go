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
// unchanged build exports an unchanged cache.
func cacheEntries(ctx context.Context, layers *cache.Layers, cs *ops.CacheStore, root string, max bool, ix *remotecache.Index, epoch *time.Time) ([]remotecache.Entry, []remotecache.Imported, error) {
	chains := &layerChains{ls: layers, epoch: epoch, own: map[string]ownLayer{}}
	final := map[string]bool{"": true}
	finalBlobs := map[string]bool{}
	finalLayers, err := chains.of(ctx, root)
	if err != nil {
		return nil, nil, err
	}
	for n := root; n != ""; n = chains.own[n].parent {
		final[n] = true
	}
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
		if !max && !final[u.Snapshot] {
			continue
		}
		if seenKey[u.Key.String()] {
			continue
		}
		seenKey[u.Key.String()] = true
		ls, err := chains.of(ctx, u.Snapshot)
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

// layerChains gives the non-empty layers of snapshot chains, base first,
// each dated (when it has no date of its own) by its snapshot's creation.
// Each snapshot is read once (its record and its layer record), so the
// results of a deep build cost one walk in all, not one per result.
type layerChains struct {
	ls    *cache.Layers
	epoch *time.Time
	own   map[string]ownLayer
}

// ownLayer is one snapshot's parent and layer (nil when its diff is empty).
type ownLayer struct {
	parent string
	layer  *cache.Layer
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
	o := ownLayer{parent: info.Parent}
	if !l.Empty {
		if l.Created == nil {
			created := info.Created.UTC()
			l.Created = &created
		}
		o.layer = l
	}
	c.own[name] = o
	return o, nil
}

// of lists the non-empty layers of name's chain, base first ("" has none).
func (c *layerChains) of(ctx context.Context, name string) ([]cache.Layer, error) {
	var rev []cache.Layer
	for name != "" {
		o, err := c.read(ctx, name)
		if err != nil {
			return nil, err
		}
		if o.layer != nil {
			rev = append(rev, *o.layer)
		}
		name = o.parent
	}
	slices.Reverse(rev)
	return rev, nil
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

// allIn reports whether every layer's blob is in set.
func allIn(ls []cache.Layer, set map[string]bool) bool {
	for _, l := range ls {
		if !set[l.Blob.Digest.String()] {
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
// the build unless the spec says ignore-error.
func exportCaches(ctx context.Context, parts store.Parts, specs []CacheSpec, cs *ops.CacheStore, root string, ix *remotecache.Index, ropts registry.Options, epoch *time.Time, sink progress.Sink, warn io.Writer) error {
	layers := &cache.Layers{Snapshotter: parts.Snapshotter, Content: parts.Content, Records: parts.Records, TempDir: parts.TempDir}
	for _, spec := range specs {
		if spec.Type == "inline" {
			continue
		}
		start := time.Now()
		err := exportCache(ctx, parts, layers, spec, cs, root, ix, ropts, epoch)
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

func exportCache(ctx context.Context, parts store.Parts, layers *cache.Layers, spec CacheSpec, cs *ops.CacheStore, root string, ix *remotecache.Index, ropts registry.Options, epoch *time.Time) error {
	entries, carried, err := cacheEntries(ctx, layers, cs, root, spec.Mode == "max", ix, epoch)
	if err != nil {
		return err
	}
	cfg := remotecache.Encode(solver.KeyVersion, entries, cacheLinks(cs, ix))
	switch spec.Type {
	case "local":
		return remotecache.ExportLocal(ctx, parts.Content, spec.Dir, tagOr(spec.Tag), cfg, carried)
	case "registry":
		if spec.Insecure {
			ropts = ropts.WithInsecure(spec.Ref)
		}
		err := remotecache.ExportRegistry(ctx, parts.Content, ropts, spec.Ref, cfg, carried)
		if err != nil && len(carried) > 0 {
			// A registry that dropped a carried layer refuses the manifest:
			// export this build's own records, whose layers are all here.
			own := entries[:len(entries)-len(carried)] // cacheEntries puts carried records last
			cfg = remotecache.Encode(solver.KeyVersion, own, cacheLinks(cs, ix))
			if rerr := remotecache.ExportRegistry(ctx, parts.Content, ropts, spec.Ref, cfg, nil); rerr != nil {
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
func inlineCache(ctx context.Context, layers *cache.Layers, cs *ops.CacheStore, root string, ix *remotecache.Index, epoch *time.Time) (map[string]json.RawMessage, error) {
	entries, _, err := cacheEntries(ctx, layers, cs, root, false, ix, epoch)
	if err != nil {
		return nil, err
	}
	b, err := remotecache.Encode(solver.KeyVersion, entries, cacheLinks(cs, ix)).Marshal()
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{remotecache.InlineKey: b}, nil
}
