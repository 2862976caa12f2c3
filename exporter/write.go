package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
)

// WriteImage turns a build result (the layers of its chain, base first,
// empty ones included, each dated) and the frontend's config template into
// an image in the content store: one layer per non-empty layer, the config
// with diff ids and history, the manifest. The layers' blobs need not be in
// cs. It returns the manifest's descriptor and the config's digest (the
// image ID). epoch (SOURCE_DATE_EPOCH), when set, dates the history (the
// layers were made for it). extra, if set, adds top-level keys to the
// config (an inline build cache).
func WriteImage(ctx context.Context, cs *content.Store, layers []cache.Layer, full dockerspec.DockerOCIImage, epoch *time.Time, extra map[string]json.RawMessage) (ocispec.Descriptor, digest.Digest, error) {
	tmpl := full.Image
	img := tmpl
	history, newIdx, err := alignHistory(tmpl.History, layers, len(tmpl.RootFS.DiffIDs))
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	created := make([]time.Time, len(newIdx))
	for j := range newIdx {
		l := layers[len(layers)-len(newIdx)+j]
		if l.Created == nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("layer %d of %d (%s) has no date", len(layers)-len(newIdx)+j+1, len(layers), l.DiffID)
		}
		created[j] = l.Created.UTC()
	}
	img.History = history
	fillTimes(&img, newIdx, created, epoch)
	img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
	for _, l := range layers {
		if l.Empty {
			continue
		}
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
		m.Layers = append(m.Layers, l.Blob)
	}
	full.Image = img
	full.Config.ImageConfig = img.Config
	cb, err := json.Marshal(full)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if len(extra) > 0 {
		if cb, err = withKeys(cb, extra); err != nil {
			return ocispec.Descriptor{}, "", err
		}
	}
	if m.Config, err = cs.Put(ctx, ocispec.MediaTypeImageConfig, cb); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc, err := cs.Put(ctx, ocispec.MediaTypeImageManifest, mb)
	return desc, m.Config.Digest, err
}

// withKeys adds keys to a JSON object (keys sorted, as a map marshals).
func withKeys(obj []byte, extra map[string]json.RawMessage) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	for k, v := range extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// alignHistory pairs the template's history with the layers: the first nBase
// layers are the base image's; each later layer-making entry takes the next
// layer and is marked empty when that layer's diff was empty.
func alignHistory(hist []ocispec.History, layers []cache.Layer, nBase int) ([]ocispec.History, []int, error) {
	out := append([]ocispec.History(nil), hist...)
	newLayers := layers[min(nBase, len(layers)):]
	// The last len(newLayers) non-empty entries are this build's steps.
	idx := []int{}
	for i := len(out) - 1; i >= 0 && len(idx) < len(newLayers); i-- {
		if !out[i].EmptyLayer {
			idx = append([]int{i}, idx...)
		}
	}
	if len(idx) != len(newLayers) {
		return nil, nil, fmt.Errorf("image history has %d layer entries for %d new layers", len(idx), len(newLayers))
	}
	for j, i := range idx {
		if newLayers[j].Empty {
			out[i].EmptyLayer = true
		}
	}
	return out, idx, nil
}

// fillTimes dates the history and the image. A layer step is dated by when
// its snapshot was made, a config step by the step before it, so a rebuild
// that hits the cache everywhere yields the same image digest. epoch
// (SOURCE_DATE_EPOCH), when set, dates everything.
func fillTimes(img *ocispec.Image, newIdx []int, created []time.Time, epoch *time.Time) {
	if epoch != nil {
		t := epoch.UTC()
		img.Created = &t
		for i := range img.History {
			if img.History[i].Created == nil || img.History[i].Created.After(t) {
				img.History[i].Created = &t
			}
		}
		return
	}
	layerTime := map[int]time.Time{}
	for j, i := range newIdx {
		layerTime[i] = created[j]
	}
	var last *time.Time
	for i := range img.History {
		h := &img.History[i]
		if t, ok := layerTime[i]; ok && h.Created == nil {
			h.Created = &t
		}
		if h.Created == nil && last != nil {
			t := *last
			h.Created = &t
		}
		if h.Created != nil {
			last = h.Created
		}
	}
	if last == nil {
		now := time.Now().UTC()
		last = &now
		for i := range img.History {
			img.History[i].Created = last
		}
	}
	t := *last
	img.Created = &t
}
