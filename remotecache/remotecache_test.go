package remotecache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/cache/content"
)

func layerOf(s string) cache.Layer {
	return cache.Layer{
		DiffID: digest.FromString("diff " + s),
		Blob:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(s), Size: int64(len(s))},
	}
}

func key(s string) digest.Digest { return digest.FromString("key " + s) }

// The config does not depend on the order of the entries or links, shares
// layers between records, and keeps only the links whose key it exports.
func TestEncodeIsDeterministic(t *testing.T) {
	a, b, c := layerOf("a"), layerOf("b"), layerOf("c")
	entries := []Entry{
		{Key: key("2"), Step: "s2", Layers: []cache.Layer{a, b}},
		{Key: key("1"), Step: "s1", Layers: []cache.Layer{a}},
		{Key: key("3"), Layers: []cache.Layer{a, b, c}},
		{Key: key("1"), Step: "dup", Layers: []cache.Layer{c}},
	}
	links := map[digest.Digest]digest.Digest{key("l1"): key("1"), key("l9"): key("9")}
	first, err := Encode("v1", entries, links).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rev := []Entry{entries[2], entries[1], entries[0], entries[3]}
	second, _ := Encode("v1", rev, links).Marshal()
	cfg, err := Decode(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Layers) != 3 || len(cfg.Records) != 3 || len(cfg.Links) != 1 || cfg.Links[0].Key != key("1") {
		t.Errorf("config: %d layers, %d records, links %v", len(cfg.Layers), len(cfg.Records), cfg.Links)
	}
	// Entries round-trip (the first entry of a key wins in key order).
	got := cfg.Entries()
	want := map[digest.Digest]int{key("1"): 1, key("2"): 2, key("3"): 3}
	for _, e := range got {
		if len(e.Layers) != want[e.Key] {
			t.Errorf("entry %s has %d layers, want %d", e.Key, len(e.Layers), want[e.Key])
		}
	}
	if string(first) != string(second) {
		t.Errorf("the config depends on the order of its entries:\n%s\n%s", first, second)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := Encode("v1", []Entry{{Key: key("1"), Layers: []cache.Layer{layerOf("a")}}}, nil)
	for name, mutate := range map[string]func(*Config){
		"chain index past the layers": func(c *Config) { c.Records[0].Chain = []int{1} },
		"negative chain index":        func(c *Config) { c.Records[0].Chain = []int{-1} },
		"bad record key":              func(c *Config) { c.Records[0].Key = "sha256:xyz" },
		"bad layer digest":            func(c *Config) { c.Layers[0].Blob.Digest = "nope" },
		"bad diff id":                 func(c *Config) { c.Layers[0].DiffID = "" },
		"bad link":                    func(c *Config) { c.Links = []Link{{Link: "x", Key: key("1")}} },
	} {
		c := good
		c.Records = append([]Record(nil), good.Records...)
		c.Records[0].Chain = append([]int(nil), good.Records[0].Chain...)
		c.Layers = append([]Layer(nil), good.Layers...)
		mutate(&c)
		b, _ := json.Marshal(c)
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Error("truncated JSON decoded")
	}
}

func TestIndexFirstCacheWins(t *testing.T) {
	ix := NewIndex("v1")
	one := Encode("v1", []Entry{{Key: key("1"), Layers: []cache.Layer{layerOf("a")}}}, nil)
	two := Encode("v1", []Entry{{Key: key("1"), Layers: []cache.Layer{layerOf("b")}}, {Key: key("2")}}, nil)
	if err := ix.Add(one, localSource{dir: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(two, localSource{dir: "two"}); err != nil {
		t.Fatal(err)
	}
	ls, ok := ix.Lookup(key("1"))
	if !ok || len(ls) != 1 || ls[0].Blob.Digest != layerOf("a").Blob.Digest {
		t.Errorf("key 1: %v %v", ls, ok)
	}
	if _, ok := ix.Lookup(key("2")); !ok || ix.Len() != 2 {
		t.Errorf("key 2 missing or len %d", ix.Len())
	}
	if err := ix.Add(Encode("v0", nil, nil), localSource{dir: "old"}); err == nil || !strings.Contains(err.Error(), "key format") {
		t.Errorf("a cache of another key format: %v", err)
	}
}

// A cache written to an OCI layout reads back whole; the layout is one
// any OCI tool reads (index.json names the manifest by tag), a second
// export under another tag keeps the first, and a corrupt blob is refused.
func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob, err := cs.Put(ctx, ocispec.MediaTypeImageLayerGzip, []byte("layer bytes"))
	if err != nil {
		t.Fatal(err)
	}
	l := cache.Layer{DiffID: digest.FromString("diff"), Blob: blob}
	cfg := Encode("v1", []Entry{{Key: key("1"), Step: "RUN x", Layers: []cache.Layer{l}}}, nil)
	dir := filepath.Join(t.TempDir(), "cache")
	if err := ExportLocal(ctx, cs, dir, "main", cfg, nil); err != nil {
		t.Fatal(err)
	}
	if err := ExportLocal(ctx, cs, dir, "other", cfg, nil); err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index.json: %s (%v)", b, err)
	}
	got, src, err := ImportLocal(ctx, dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cfg, got); diff != "" {
		t.Errorf("config read back (-want +got):\n%s", diff)
	}
	other, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Fetch(ctx, other, []ocispec.Descriptor{blob}, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := other.ReadBlob(ctx, blob.Digest); err != nil || string(b) != "layer bytes" {
		t.Errorf("fetched layer: %q, %v", b, err)
	}
	if _, _, err := ImportLocal(ctx, dir, "missing"); err == nil || !strings.Contains(err.Error(), `no cache tagged "missing"`) {
		t.Errorf("missing tag: %v", err)
	}
	// A layer whose bytes were changed is refused and not stored.
	p := filepath.Join(dir, "blobs", "sha256", blob.Digest.Encoded())
	if err := os.WriteFile(p, []byte("other bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, _ := content.Open(t.TempDir())
	if err := src.Fetch(ctx, third, []ocispec.Descriptor{blob}, nil); err == nil {
		t.Error("a corrupt layer was fetched")
	}
	if _, err := third.Info(ctx, blob.Digest); err == nil {
		t.Error("a corrupt layer was stored")
	}
}

func TestInlineOf(t *testing.T) {
	cfg := Encode("v1", []Entry{{Key: key("1")}}, nil)
	raw, _ := cfg.Marshal()
	img, _ := json.Marshal(map[string]any{"architecture": "amd64", InlineKey: json.RawMessage(raw)})
	got, err := inlineOf(img)
	if err != nil || len(got.Records) != 1 {
		t.Errorf("inline cache: %+v, %v", got, err)
	}
	if _, err := inlineOf([]byte(`{"architecture":"amd64"}`)); err == nil {
		t.Error("an image without an inline cache read as one")
	}
}

func TestSameRepository(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:5000/app:cache", "127.0.0.1:5000/app:main", true},
		{"127.0.0.1:5000/app:cache", "127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), true},
		{"127.0.0.1:5000/app:cache", "127.0.0.1:5000/other:cache", false},
		{"127.0.0.1:5000/app:cache", "127.0.0.1:5001/app:cache", false},
	} {
		if got := sameRepository(tc.a, tc.b); got != tc.want {
			t.Errorf("sameRepository(%s, %s) = %t", tc.a, tc.b, got)
		}
	}
}

// Records keep each layer's own date and empty layers, through Encode,
// Marshal and Decode; a blob two records share under other dates is
// listed once in the manifest.
func TestEncodeKeepsDatesAndEmptyLayers(t *testing.T) {
	t1, t2 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	epoch := int64(1700000000)
	a := layerOf("a")
	run, cp := layerOf("same bytes"), layerOf("same bytes")
	run.Created, cp.Created = &t1, &t2
	empty := cache.Layer{DiffID: digest.FromString("empty tar"), Empty: true, Created: &t2, SourceDateEpoch: &epoch}
	in := []Entry{
		{Key: key("run"), Layers: []cache.Layer{a, run}},
		{Key: key("copy"), Layers: []cache.Layer{a, empty, cp}},
	}
	b, err := Encode("v1", in, nil).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]Entry{}
	for _, e := range cfg.Entries() {
		got[e.Key] = e
	}
	for _, e := range in {
		if diff := cmp.Diff(e.Layers, got[e.Key].Layers); diff != "" {
			t.Errorf("record %s (-put +decoded):\n%s", e.Key, diff)
		}
	}
	m := manifestOf(cfg, ocispec.Descriptor{})
	if len(m.Layers) != 2 {
		t.Errorf("manifest layers %v, want a and the shared blob once", m.Layers)
	}
}
