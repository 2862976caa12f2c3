package ops

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/llb"
	"github.com/strata-build/strata/mount"
	"github.com/strata-build/strata/solver"
)

// httpOp is a file fetched from a URL (ADD https://...). Its output is a tree
// holding that one file at /<filename>, mode 0600 unless the op says
// otherwise, its mtime the server's Last-Modified.
//
// Keying: with a checksum (ADD --checksum) the key is the checksum and the
// file's attributes, so a hit downloads nothing. Without one the file is
// downloaded while keying, into the content store, and the key is its
// content digest: a changed file misses, an unchanged one at another URL
// hits. The validators of the last download (ETag, Last-Modified) are kept
// per URL, so an unchanged file answers 304 and is not downloaded again.
type httpOp struct {
	w  *Worker
	v  *llb.Vertex
	op *llb.SourceOp

	// got is the download CacheMap keyed on; nil when a checksum keyed it.
	got *httpFile
}

// httpFile is a downloaded body held in the content store.
type httpFile struct {
	Digest   digest.Digest // sha256 of the body, its blob in the content store
	Size     int64
	Filename string    // base name from Content-Disposition, if the server sent one
	ModTime  time.Time // zero when the server sent no Last-Modified
	LastMod  string    // the Last-Modified header as sent
}

// httpKey is what a URL's file is keyed by.
type httpKey struct {
	Checksum    digest.Digest // ADD --checksum, or the content digest
	Filename    string
	Mode        uint32
	UID, GID    int
	LastModTime string `json:",omitempty"` // without a checksum only
}

// httpUnnamed is the file name when neither the op, the server nor the URL
// path gives one.
const httpUnnamed = "__unnamed__"

func (o *httpOp) src() llb.HTTPSource {
	if o.op.HTTP != nil {
		return *o.op.HTTP
	}
	return llb.HTTPSource{}
}

func (o *httpOp) mode() os.FileMode {
	if m := o.src().Mode; m != 0 {
		return os.FileMode(m) & os.ModePerm
	}
	return 0o600
}

func (o *httpOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	s := o.src()
	key := httpKey{Checksum: o.op.Digest, Mode: uint32(o.mode()), UID: s.UID, GID: s.GID}
	if o.op.Digest != "" {
		if err := o.op.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("checksum of %s: %w", o.op.Ref, err)
		}
		name, err := o.filename(nil)
		if err != nil {
			return nil, err
		}
		key.Filename = name
	} else {
		f, err := o.fetch(ctx, true, "")
		if err != nil {
			return nil, err
		}
		o.got = f
		if key.Filename, err = o.filename(f); err != nil {
			return nil, err
		}
		key.Checksum, key.LastModTime = f.Digest, f.LastMod
	}
	return &solver.CacheMap{
		Digest: opDigest("http", key),
		Components: []solver.Component{
			{Name: "url", Value: o.op.Ref},
			{Name: "content", Value: key.Checksum.String()},
			{Name: "filename", Value: key.Filename},
		},
	}, nil
}

// filename is the name of the file in the output tree: the op's, else the
// one the server sent, else the last element of the URL path.
func (o *httpOp) filename(f *httpFile) (string, error) {
	name := o.src().Filename
	if name == "" && f != nil {
		name = f.Filename
	}
	if name == "" {
		name = httpUnnamed
		if u, err := url.Parse(o.op.Ref); err == nil {
			if b := path.Base(u.Path); b != "." && b != "/" {
				name = b
			}
		}
	}
	if name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("invalid file name %q for %s", name, o.op.Ref)
	}
	return name, nil
}

func (o *httpOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	f, err := o.content(ctx)
	if err != nil {
		return nil, err
	}
	if o.got == nil {
		// Keyed by checksum before any download: the name was decided
		// without the server's word, keep it so.
		f.Filename = ""
	}
	name, err := o.filename(f)
	if err != nil {
		return nil, err
	}
	active := randomID("http-")
	mounts, err := o.w.Snapshotter.Prepare(ctx, active, "")
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	err = mount.WithTemp(o.w.TempDir, mounts, func(root string) error {
		return o.write(ctx, filepath.Join(root, name), f)
	})
	if err != nil {
		_ = o.w.Snapshotter.Remove(context.WithoutCancel(ctx), active)
		return nil, err
	}
	return o.w.commit(ctx, active)
}

// content returns the body to write: the download CacheMap made, the blob
// the checksum names when the store has it, or a new download.
func (o *httpOp) content(ctx context.Context) (*httpFile, error) {
	if f := o.got; f != nil {
		if _, err := o.w.Content.Info(ctx, f.Digest); err == nil {
			return f, nil
		}
		// The blob went away since keying: download again, and insist on
		// the content the key was made from.
		return o.fetch(ctx, false, f.Digest)
	}
	if o.op.Digest.Algorithm() == digest.Canonical {
		if info, err := o.w.Content.Info(ctx, o.op.Digest); err == nil {
			f := &httpFile{Digest: o.op.Digest, Size: info.Size}
			if rec, err := o.w.Records.HTTP(o.op.Ref); err == nil && rec != nil && rec.Digest == o.op.Digest {
				f.Filename, f.LastMod = rec.Filename, rec.LastModified
				f.ModTime, _ = http.ParseTime(rec.LastModified)
			}
			return f, nil
		}
	}
	return o.fetch(ctx, false, o.op.Digest)
}

// write copies the blob of f to p with the op's mode, owner and the
// server's modification time.
func (o *httpOp) write(ctx context.Context, p string, f *httpFile) error {
	in, err := o.w.Content.Open(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("open download of %s: %w", o.op.Ref, err)
	}
	defer in.Close()
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, o.mode())
	if err != nil {
		return fmt.Errorf("write %s: %w", o.op.Ref, err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", o.op.Ref, err)
	}
	// Chmod too: the umask narrowed the mode OpenFile set.
	if err := os.Chmod(p, o.mode()); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	s := o.src()
	if err := os.Lchown(p, s.UID, s.GID); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	if !f.ModTime.IsZero() {
		if err := os.Chtimes(p, f.ModTime, f.ModTime); err != nil {
			return fmt.Errorf("set mtime of %s: %w", p, err)
		}
	}
	return nil
}

// fetch downloads the URL into the content store. With conditional set it
// sends the validators of the last download and reuses its blob on a 304.
// A non-empty want is the digest the body must have.
func (o *httpOp) fetch(ctx context.Context, conditional bool, want digest.Digest) (*httpFile, error) {
	u := o.op.Ref
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	var prev *cache.HTTPRecord
	if conditional {
		prev, err = o.w.Records.HTTP(u)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			if _, err := o.w.Content.Info(ctx, prev.Digest); err != nil {
				prev = nil // the body is gone: ask for all of it
			}
		}
		if prev != nil && prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev != nil && prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && prev != nil {
		f := &httpFile{Digest: prev.Digest, Size: prev.Size, Filename: prev.Filename, LastMod: prev.LastModified}
		f.ModTime, _ = http.ParseTime(prev.LastModified)
		return f, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: server answered %s", u, resp.Status)
	}
	f, err := o.store(ctx, resp, want)
	if err != nil {
		return nil, err
	}
	rec := cache.HTTPRecord{
		ETag: resp.Header.Get("ETag"), LastModified: f.LastMod,
		Digest: f.Digest, Size: f.Size, Filename: f.Filename, Fetched: time.Now().UTC(),
	}
	if err := o.w.Records.SaveHTTP(u, rec); err != nil {
		return nil, fmt.Errorf("record download of %s: %w", u, err)
	}
	return f, nil
}

// store streams a 200 response body into the content store, checking it
// against want when given.
func (o *httpOp) store(ctx context.Context, resp *http.Response, want digest.Digest) (*httpFile, error) {
	u := o.op.Ref
	w, err := o.w.Content.Writer(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var dst io.Writer = w
	var other digest.Digester // for a checksum in another algorithm than sha256
	if want != "" && want.Algorithm() != digest.Canonical {
		if !want.Algorithm().Available() {
			return nil, fmt.Errorf("checksum of %s: unsupported digest algorithm %s", u, want.Algorithm())
		}
		other = want.Algorithm().Digester()
		dst = io.MultiWriter(w, other.Hash())
	}
	if _, err := io.Copy(dst, resp.Body); err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	got := w.Digest()
	if other != nil {
		got = other.Digest()
	}
	if want != "" && got != want {
		return nil, fmt.Errorf("digest mismatch for %s: got %s, want %s", u, got, want)
	}
	if err := w.Commit(w.Size(), w.Digest()); err != nil {
		return nil, fmt.Errorf("store download of %s: %w", u, err)
	}
	f := &httpFile{Digest: w.Digest(), Size: w.Size(), Filename: dispositionName(resp.Header.Get("Content-Disposition"))}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			f.ModTime, f.LastMod = t, lm
		}
	}
	return f, nil
}

// dispositionName is the file name a Content-Disposition header gives, or
// "" when it gives none that is a plain base name.
func dispositionName(h string) string {
	if h == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(h)
	if err != nil {
		return ""
	}
	name := params["filename"]
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return ""
	}
	return name
}
