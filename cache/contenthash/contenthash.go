// Package contenthash computes content-based cache keys for COPY and ADD
// sources: a digest of exactly the files a copy reads, never of their times.
//
// Vocabulary:
//   - A Sum is the checksum of one copy's selection (see context/local): a
//     Digest over every selected entry, and the per-entry digests in Files,
//     keyed by the path the entry is read from (local.Selection.SourcePath:
//     relative in the build context, absolute in a stage), so a caller can
//     tell which file changed by the name its user knows.
//   - An entry's digest covers its path, type, mode bits, symlink target,
//     content digest and, for stage sources, its owner (the build context's
//     owners do not matter: the copy resets them to 0:0).
//   - A Cache remembers the content digest of each regular file by (path,
//     device, inode, size, mtime, ctime), in one file per tree root under
//     its directory, so a warm build loads only the records of the trees it
//     reads and re-reads only files whose stat changed. Editing a file in
//     place without changing its size or mtime still changes its ctime. A
//     record of a file that a walk of its directory no longer finds is
//     dropped on Save; a build that changed nothing writes nothing.
//
// One use:
//
//	c, err := contenthash.OpenCache(dir)
//	sum, err := c.Checksum(ctx, local.Source{Root: ctxDir, Excludes: ignore, Context: true}, copyAction)
//	err = c.Save()
package contenthash

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/context/local"
	"github.com/strata-build/strata/internal/bufcopy"
	"github.com/strata-build/strata/llb"
	"golang.org/x/sync/errgroup"
)

// version starts every Sum digest; change it when the digest format changes.
const version = "strata.contenthash.v1"

// Sum is the checksum of what one copy reads.
type Sum struct {
	Digest digest.Digest
	// Files maps the path each entry is read from (see
	// local.Selection.SourcePath) to the entry's digest. The Digest covers
	// the entries by where they land, so the same files copied to another
	// name give another Digest and the same Files keys.
	Files map[string]digest.Digest
}

// Checksum is the digest of exactly the files a.Copy would read from src:
// the same selection (Src, wildcards, .dockerignore, a.Excludes,
// FollowSymlinks, CopyDirContents, Parents) that solver/ops/fileop copies.
// A nil c computes every digest from scratch. src may be given as a
// fileop.Source (the same type).
func (c *Cache) Checksum(ctx context.Context, src local.Source, a *llb.CopyAction) (Sum, error) {
	sel, err := local.Select(ctx, src, a)
	if err != nil {
		return Sum{}, err
	}
	rc := c.root(src.Root)
	entries := make([]local.Entry, 0, rc.size()+16) // the last walk's count, roughly
	for i := range sel.Matches {
		if sel.Matches[i].Info.IsDir() {
			rc.walkedDir(sel.Matches[i].Host)
		}
		if entries, err = sel.AppendEntries(ctx, &sel.Matches[i], entries); err != nil {
			return Sum{}, err
		}
	}
	contents, err := c.contentDigests(ctx, rc, entries)
	if err != nil {
		return Sum{}, err
	}
	sum := Sum{Files: make(map[string]digest.Digest, len(entries))}
	var d digester
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", version)
	line := make([]byte, 0, 256)
	for i, e := range entries {
		dest := e.Dest()
		ed := d.entry(e, dest, contents[i], !src.Context)
		sum.Files[sel.SourcePath(e)] = ed
		line = append(strconv.AppendQuote(line[:0], dest), ' ')
		line = append(append(line, ed...), '\n')
		h.Write(line)
	}
	sum.Digest = digest.NewDigest(digest.SHA256, h)
	return sum, nil
}

// digester computes entry digests with one reused hash and buffer.
type digester struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
	hex [len("sha256:") + 2*sha256.Size]byte
}

// entry describes one entry: path, type, mode, owner (when kept), symlink
// target or device number, and content, as the lines
//
//	path "dest"\ntype 100000\nmode 644\n[owner 0:0\n]content sha256:...\n
//
// with octal type and mode.
func (d *digester) entry(e local.Entry, dest string, content digest.Digest, owners bool) digest.Digest {
	if d.h == nil {
		d.h = sha256.New()
	}
	st := e.Info.Sys().(*syscall.Stat_t)
	b := append(d.buf[:0], "path "...)
	b = strconv.AppendQuote(b, dest)
	b = append(b, "\ntype "...)
	b = strconv.AppendUint(b, uint64(st.Mode&syscall.S_IFMT), 8)
	b = append(b, "\nmode "...)
	b = strconv.AppendUint(b, uint64(st.Mode&0o7777), 8)
	b = append(b, '\n')
	if owners {
		b = append(b, "owner "...)
		b = strconv.AppendUint(b, uint64(st.Uid), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(st.Gid), 10)
		b = append(b, '\n')
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFLNK:
		b = append(b, "link "...)
		b = strconv.AppendQuote(b, e.Link)
		b = append(b, '\n')
	case syscall.S_IFCHR, syscall.S_IFBLK:
		b = append(b, "rdev "...)
		b = strconv.AppendUint(b, uint64(st.Rdev), 10)
		b = append(b, '\n')
	case syscall.S_IFREG:
		b = append(b, "content "...)
		b = append(b, content...)
		b = append(b, '\n')
	}
	d.buf = b
	d.h.Reset()
	d.h.Write(b)
	copy(d.hex[:], "sha256:")
	hex.Encode(d.hex[len("sha256:"):], d.h.Sum(d.sum[:0]))
	return digest.Digest(d.hex[:])
}

// contentDigests returns the content digest of each regular file among
// entries (empty for others), hashing in parallel what the cache lacks.
func (c *Cache) contentDigests(ctx context.Context, rc *rootCache, entries []local.Entry) ([]digest.Digest, error) {
	out := make([]digest.Digest, len(entries))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, e := range entries {
		if !e.Info.Mode().IsRegular() {
			continue
		}
		k := keyOf(e.Host, e.Info)
		if d, ok := rc.lookup(k); ok {
			out[i] = d
			continue
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := c.hashFile(e.Host)
			if err != nil {
				return err
			}
			out[i] = d
			rc.store(k, d)
			return nil
		})
	}
	return out, g.Wait()
}

func (c *Cache) hashFile(p string) (digest.Digest, error) {
	if c != nil && c.hashed != nil {
		c.hashed(p)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("checksum %s: %w", p, err)
	}
	defer f.Close()
	h := digest.SHA256.Digester()
	if _, err := bufcopy.Copy(h.Hash(), f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", p, err)
	}
	return h.Digest(), nil
}

// key identifies one version of a file by its stat.
type key struct {
	Path         string
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64
}

func keyOf(p string, fi fs.FileInfo) key {
	st := fi.Sys().(*syscall.Stat_t)
	return key{Path: p, Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}
