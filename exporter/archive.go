package exporter

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/internal/atomicfile"
)

// entry is one file of a layout: inline data or a blob of the store.
type entry struct {
	name string
	data []byte
	blob ocispec.Descriptor
}

// layoutEntries are the files of an OCI layout holding blobs and index.
func layoutEntries(blobs []ocispec.Descriptor, index ocispec.Index) ([]entry, error) {
	idx, err := json.Marshal(index)
	if err != nil {
		return nil, fmt.Errorf("encode index.json: %w", err)
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	es := []entry{{name: ocispec.ImageLayoutFile, data: layout}, {name: "index.json", data: idx}}
	for _, b := range blobs {
		es = append(es, entry{name: blobPath(b.Digest), blob: b})
	}
	return es, nil
}

func newIndex(ms []ocispec.Descriptor) ocispec.Index {
	if ms == nil {
		ms = []ocispec.Descriptor{}
	}
	return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ms}
}

// writeTar writes es, and the directories they need, as a deterministic tar.
func writeTar(ctx context.Context, cs *content.Store, w io.Writer, es []entry) error {
	byName := map[string]*entry{}
	for i := range es {
		e := &es[i]
		byName[e.name] = e
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			byName[d+"/"] = nil
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{Name: n, ModTime: time.Unix(0, 0), Mode: 0o755, Typeflag: tar.TypeDir}
		e := byName[n]
		if e == nil {
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write tar entry %s: %w", n, err)
			}
			continue
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(e.data))
		if e.data == nil {
			hdr.Size = e.blob.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar entry %s: %w", n, err)
		}
		if e.data != nil {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("write tar entry %s: %w", n, err)
			}
		} else if err := copyBlob(ctx, cs, tw, e.blob); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish tar: %w", err)
	}
	return nil
}

// copyBlob copies exactly the blob d to w, checking its digest on the way.
func copyBlob(ctx context.Context, cs *content.Store, w io.Writer, d ocispec.Descriptor) error {
	f, err := cs.Open(ctx, d.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	v := d.Digest.Verifier()
	n, err := io.Copy(io.MultiWriter(w, v), io.LimitReader(f, d.Size+1))
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", d.Digest, err)
	}
	if n != d.Size || !v.Verified() {
		return fmt.Errorf("copy blob %s: stored blob does not match its digest and size %d", d.Digest, d.Size)
	}
	return nil
}

// OCIArchive writes an image as a tar of an OCI image layout: oci-layout,
// index.json (one entry per name) and blobs/. Path "-" streams to stdout;
// W, if set, is used instead of Path. A file is written to a temporary name
// and renamed into place when complete.
type OCIArchive struct {
	Path string
	W    io.Writer
}

// Export writes the archive.
func (e OCIArchive) Export(ctx context.Context, src Source) (Report, error) {
	blobs, err := closure(ctx, src.Content, src.Manifest)
	if err != nil {
		return Report{}, fmt.Errorf("export oci archive: %w", err)
	}
	es, err := layoutEntries(blobs, newIndex(indexEntries(src.Manifest, src.Names)))
	if err != nil {
		return Report{}, err
	}
	where, n, err := output(e.Path, e.W, func(w io.Writer) error {
		return writeTar(ctx, src.Content, w, es)
	})
	if err != nil {
		return Report{}, fmt.Errorf("export oci archive: %w", err)
	}
	return Report{Digest: src.Manifest.Digest, Path: where, Size: n}, nil
}

// indexEntries are index.json entries for desc: one per name, or one without
// a name.
func indexEntries(desc ocispec.Descriptor, names []string) []ocispec.Descriptor {
	desc = plain(desc)
	if len(names) == 0 {
		return []ocispec.Descriptor{desc}
	}
	var ms []ocispec.Descriptor
	for _, n := range names {
		d := desc
		d.Annotations = nameAnnotations(n)
		ms = append(ms, d)
	}
	return ms
}

// output runs fn on w, on stdout for path "-", or on a temporary file renamed
// to path once fn succeeds. It returns where the bytes went and their count.
func output(p string, w io.Writer, fn func(io.Writer) error) (string, int64, error) {
	if w == nil && p == "-" {
		w = os.Stdout
	}
	if w != nil {
		cw := &countingWriter{w: w}
		if p == "" {
			p = "-"
		}
		err := fn(cw)
		return p, cw.n, err
	}
	if p == "" {
		return "", 0, fmt.Errorf("no destination: set a path or a writer")
	}
	n, err := writeFileAtomic(p, fn)
	return p, n, err
}

// writeFileAtomic writes what fn writes to p atomically (mode 0644) and
// returns the byte count: a failure leaves p as it was.
func writeFileAtomic(p string, fn func(io.Writer) error) (int64, error) {
	f, err := atomicfile.New(p, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := &countingWriter{w: bw}
	if err := fn(cw); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Commit(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// uniqueBlobs drops repeated digests, keeping the first.
func uniqueBlobs(ds []ocispec.Descriptor) []ocispec.Descriptor {
	seen := map[digest.Digest]bool{}
	var out []ocispec.Descriptor
	for _, d := range ds {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	return out
}
