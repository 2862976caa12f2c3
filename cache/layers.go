package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/layer"
	"github.com/strata-build/strata/cache/snapshot"
	"github.com/strata-build/strata/mount"
)

// Layers makes the layer of a committed snapshot (its diff against its
// parent, compressed into the content store) the first time it is asked
// for, and remembers it in Records, so an image export, a COPY --link merge
// and every later export share one blob.
type Layers struct {
	Snapshotter snapshot.Snapshotter
	Content     *content.Store
	Records     *Records
	// TempDir is where a lower that must be mounted to be compared goes.
	TempDir string
	// Compression is how a layer made now is stored (gzip by default). A
	// layer that has a blob already keeps it, whatever its compression,
	// unless ForceCompression: as buildx's force-compression.
	Compression      layer.Compression
	ForceCompression bool
}

// Chain lists a committed snapshot and its parents, base first.
func (ls *Layers) Chain(ctx context.Context, name string) ([]string, error) {
	var out []string
	for name != "" {
		info, err := ls.Snapshotter.Stat(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stat snapshot %s: %w", name, err)
		}
		out = append([]string{name}, out...)
		name = info.Parent
	}
	return out, nil
}

// OfChain returns the layers of a chain from Chain, base first.
func (ls *Layers) OfChain(ctx context.Context, chain []string, epoch *time.Time) ([]Layer, error) {
	out := make([]Layer, len(chain))
	for i, name := range chain {
		parent := ""
		if i > 0 {
			parent = chain[i-1]
		}
		l, err := ls.Of(ctx, name, parent, epoch)
		if err != nil {
			return nil, fmt.Errorf("layer of %s: %w", name, err)
		}
		out[i] = *l
	}
	return out, nil
}

// Of returns the layer of the committed snapshot name over parent ("" for
// none). With epoch (SOURCE_DATE_EPOCH) the layer's times are clamped and it
// is recorded apart from the unclamped one. A record whose blob is gone (a
// prune removed it) is made again.
func (ls *Layers) Of(ctx context.Context, name, parent string, epoch *time.Time) (*Layer, error) {
	recName := name
	if epoch != nil {
		recName = fmt.Sprintf("%s@%d", name, epoch.Unix())
	}
	var made *Layer // the layer's blob as first made, in any compression
	if ls.ForceCompression {
		var err error
		if made, err = ls.Records.Layer(recName); err != nil {
			return nil, err
		}
		recName += "#" + ls.Compression.String()
	}
	l, err := ls.Records.Layer(recName)
	if err != nil {
		return nil, err
	}
	if l != nil && (l.Empty || ls.hasBlob(ctx, l)) {
		return l, nil
	}
	if made != nil && !made.Empty && ls.hasBlob(ctx, made) {
		// Recompressed: the same tar, so the same diff ID.
		if l, err = ls.recompress(ctx, made); err != nil {
			return nil, err
		}
		return l, ls.Records.SaveLayer(recName, *l)
	}
	lower, release, err := ls.view(ctx, parent)
	if err != nil {
		return nil, err
	}
	defer release()
	upper, releaseUpper, err := ls.view(ctx, name)
	if err != nil {
		return nil, err
	}
	defer releaseUpper()
	l, err = ls.write(ctx, lower, snapshot.DiffMounts(upper), epoch)
	if err != nil {
		return nil, err
	}
	if epoch != nil {
		e := epoch.Unix()
		l.SourceDateEpoch = &e
	}
	if err := ls.Records.SaveLayer(recName, *l); err != nil {
		return nil, err
	}
	return l, nil
}

// recompress stores the blob of l again in ls.Compression.
func (ls *Layers) recompress(ctx context.Context, l *Layer) (*Layer, error) {
	if mediaCompression(l.Blob.MediaType) == ls.Compression.String() {
		return l, nil
	}
	f, err := ls.Content.Open(ctx, l.Blob.Digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr, release, err := layer.Decompress(f)
	if err != nil {
		return nil, err
	}
	defer release()
	cw, err := ls.Content.Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer cw.Close()
	diffID, blob, err := layer.CompressWith(tr, cw, ls.Compression)
	if err != nil {
		return nil, err
	}
	if diffID != l.DiffID {
		return nil, fmt.Errorf("layer %s: its tar has diff id %s, its record says %s", l.Blob.Digest, diffID, l.DiffID)
	}
	if err := cw.Commit(blob.Size, blob.Digest); err != nil {
		return nil, err
	}
	out := *l
	out.Blob = blob
	return &out, nil
}

// mediaCompression is the Compression.String of a layer media type at its
// default level.
func mediaCompression(mt string) string {
	switch {
	case strings.HasSuffix(mt, "+zstd"):
		return "zstd"
	case strings.HasSuffix(mt, "gzip"):
		return "gzip"
	}
	return "uncompressed"
}

func (ls *Layers) hasBlob(ctx context.Context, l *Layer) bool {
	_, err := ls.Content.Info(ctx, l.Blob.Digest)
	return err == nil
}

// view mounts nothing: it returns the read-only mounts of a committed
// snapshot under a fresh key ("" gives none) and how to let them go.
func (ls *Layers) view(ctx context.Context, name string) ([]mount.Mount, func(), error) {
	if name == "" {
		return nil, func() {}, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	key := "layer-view-" + hex.EncodeToString(b[:])
	ms, err := ls.Snapshotter.View(ctx, key, name)
	if err != nil {
		return nil, nil, fmt.Errorf("view snapshot %s: %w", name, err)
	}
	return ms, func() { _ = ls.Snapshotter.Remove(context.WithoutCancel(ctx), key) }, nil
}

// write diffs upper against lower and compresses the tar into the content
// store in one pass; an empty diff stores no blob.
func (ls *Layers) write(ctx context.Context, lower, upper []mount.Mount, epoch *time.Time) (*Layer, error) {
	cw, err := ls.Content.Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer cw.Close()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		n, err := layer.WriteDiff(ctx, pw, lower, upper, layer.DiffOptions{SourceDateEpoch: epoch, TempDir: ls.TempDir})
		pw.CloseWithError(err)
		done <- n
	}()
	diffID, blob, err := layer.CompressWith(pr, cw, ls.Compression)
	pr.CloseWithError(err) // unblocks the diff on failure
	entries := <-done
	if err != nil {
		return nil, err
	}
	l := &Layer{DiffID: diffID, Blob: blob, Empty: entries == 0}
	if !l.Empty {
		if err := cw.Commit(blob.Size, blob.Digest); err != nil {
			return nil, err
		}
	}
	return l, nil
}
