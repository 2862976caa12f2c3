package builder_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache/content"
	"github.com/strata-build/strata/cache/metadata"
	"github.com/strata-build/strata/exporter"
	"github.com/strata-build/strata/internal/progress"
	"github.com/strata-build/strata/store"
)

// blobSet lists the digests in the content store.
func blobSet(t *testing.T, st *store.Store) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	if err := st.Parts().Content.Walk(context.Background(), func(i content.Info) error {
		out[i.Digest] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// recordKeys lists the cache records, most recently used first.
func recordKeys(t *testing.T, st *store.Store) []digest.Digest {
	t.Helper()
	du, err := st.DiskUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, u := range du {
		out = append(out, u.Key)
	}
	return out
}

// ageRecords moves the last use of the given records (all when keys is
// empty) back by d, as if they had not been used for that long.
func ageRecords(t *testing.T, st *store.Store, d time.Duration, keys ...digest.Digest) {
	t.Helper()
	only := map[string]bool{}
	for _, k := range keys {
		only[k.String()] = true
	}
	db, err := metadata.Open(filepath.Join(st.Root(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("results"))
		if b == nil {
			return fmt.Errorf("no results bucket")
		}
		updates := map[string][]byte{}
		err := b.ForEach(func(k, v []byte) error {
			if len(only) > 0 && !only[string(k)] {
				return nil
			}
			var rec map[string]any
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			last, err := time.Parse(time.RFC3339Nano, rec["LastUsed"].(string))
			if err != nil {
				return err
			}
			rec["LastUsed"] = last.Add(-d)
			nv, err := json.Marshal(rec)
			updates[string(k)] = nv
			return err
		})
		if err != nil {
			return err
		}
		for k, v := range updates {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func imageStore(e *env) []exporter.Exporter {
	return []exporter.Exporter{exporter.ImageStore{}}
}

func TestPruneAllKeepsTaggedImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tagged := writeContext(t, map[string]string{"Dockerfile": twoStage, "a.txt": "alpha\n", "b.txt": "beta\n"})
	res, _ := e.mustBuild(tagged, builder.Options{Tags: []string{"kept:1"}, Exports: imageStore(e)})
	keptBlobs := blobSet(t, e.store)
	scratch := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 300000 /dev/urandom > /noise\n"})
	loose, _ := e.mustBuild(scratch, builder.Options{})
	looseBlobs := map[digest.Digest]bool{}
	for d := range blobSet(t, e.store) {
		if !keptBlobs[d] {
			looseBlobs[d] = true
		}
	}
	// The untagged image adds its manifest, config and one layer.
	if len(looseBlobs) != 3 || !looseBlobs[loose.Manifest.Digest] {
		t.Fatalf("untagged build added blobs %v", looseBlobs)
	}

	rep, err := e.store.Prune(ctx, store.PruneOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recordKeys(t, e.store)); n != 0 || rep.Records == 0 {
		t.Errorf("after prune --all: %d records left, report %+v", n, rep)
	}
	if n := len(snapshotNames(t, e.store)); n != 0 || rep.Snapshots == 0 {
		t.Errorf("after prune --all: %d snapshots left %v, report %+v", n, snapshotNames(t, e.store), rep)
	}
	after := blobSet(t, e.store)
	for d := range keptBlobs {
		if !after[d] {
			t.Errorf("prune removed blob %s of a tagged image", d)
		} else if _, err := e.store.Parts().Content.ReadBlob(ctx, d); err != nil {
			t.Errorf("blob %s of a tagged image: %v", d, err)
		}
	}
	for d := range looseBlobs {
		if after[d] {
			t.Errorf("prune kept unreferenced blob %s", d)
		}
	}
	if rep.Blobs != len(looseBlobs) || rep.Reclaimed < 300000 {
		t.Errorf("report %+v: want %d blobs and at least the 300 kB layer", rep, len(looseBlobs))
	}

	// The tagged image still works as a base, and rebuilding it gives the
	// same files.
	from := writeContext(t, map[string]string{"Dockerfile": "FROM kept:1\nRUN cat /app/out > /tmp/again\n"})
	again, _ := e.mustBuild(from, builder.Options{})
	if f := e.readImage(again).file(t, "/tmp/again"); string(f.data) != "alpha\nbeta\nbuilt\n" {
		t.Errorf("/tmp/again = %q", f.data)
	}
	rebuilt, _ := e.mustBuild(tagged, builder.Options{})
	if got := string(e.readImage(rebuilt).file(t, "/app/out").data); got != "alpha\nbeta\nbuilt\n" {
		t.Errorf("rebuilt /app/out = %q", got)
	}
	_ = res
}

func TestPlainPruneKeepsRecentRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo old > /old\n"})
	e.mustBuild(old, builder.Options{})
	ageRecords(t, e.store, 72*time.Hour) // older than the default 48h
	recent := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo recent > /recent\n"})
	e.mustBuild(recent, builder.Options{})
	before := recordKeys(t, e.store)
	// busybox, RUN old, RUN recent; the busybox record was used again.
	if len(before) != 3 {
		t.Fatalf("%d records, want 3", len(before))
	}
	rep, err := e.store.Prune(ctx, store.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 1 || rep.Snapshots != 1 {
		t.Errorf("plain prune removed %+v, want the one old record and its snapshot", rep)
	}
	after := recordKeys(t, e.store)
	if len(after) != 2 || after[0] != before[0] || after[1] != before[1] {
		t.Errorf("records after prune %v, want the two recent of %v", after, before)
	}
	_, ev := e.mustBuild(recent, builder.Options{})
	for name, st := range ev.statuses() {
		if st != progress.Cached {
			t.Errorf("after plain prune %s is %s", name, st)
		}
	}
	// A second plain prune has nothing left to do.
	rep, err = e.store.Prune(ctx, store.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 0 || rep.Snapshots != 0 {
		t.Errorf("second plain prune removed %+v", rep)
	}
}

func TestPruneUntilFilter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo a > /a\nRUN echo a2 > /a2\n"})
	b := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo b > /b\n"})
	e.mustBuild(a, builder.Options{})
	ageRecords(t, e.store, 3*time.Hour)
	e.mustBuild(b, builder.Options{})
	rep, err := e.store.Prune(ctx, store.PruneOptions{Until: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Both RUN steps of a go; busybox was used again by b.
	if rep.Records != 2 || rep.Snapshots != 2 {
		t.Errorf("until=1h removed %+v, want a's two records and snapshots", rep)
	}
	_, evB := e.mustBuild(b, builder.Options{})
	for name, st := range evB.statuses() {
		if st != progress.Cached {
			t.Errorf("b after until=1h: %s is %s", name, st)
		}
	}
	_, evA := e.mustBuild(a, builder.Options{})
	for name, st := range evA.statuses() {
		if strings.Contains(name, "RUN") && st != progress.Done {
			t.Errorf("a after until=1h: %s is %s, want it run again", name, st)
		}
	}
	// Nothing is older than a day now.
	rep, err = e.store.Prune(ctx, store.PruneOptions{Until: 24 * time.Hour})
	if err != nil || rep.Records != 0 {
		t.Errorf("until=24h removed %+v, %v", rep, err)
	}
}

// cacheSize is what the records hold on disk: their snapshot chains, each
// snapshot counted once.
func cacheSize(t *testing.T, st *store.Store) int64 {
	t.Helper()
	ctx := context.Background()
	seen := map[string]bool{}
	var total int64
	for _, u := range mustDU(t, st) {
		for name := u.Snapshot; name != "" && !seen[name]; {
			seen[name] = true
			us, err := st.Parts().Snapshotter.Usage(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			total += us.Size
			info, err := st.Parts().Snapshotter.Stat(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			name = info.Parent
		}
	}
	return total
}

func mustDU(t *testing.T, st *store.Store) []store.DiskUsage {
	t.Helper()
	du, err := st.DiskUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return du
}

func TestPruneKeepStorage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Three chains of two 1 MiB steps each, built oldest first; a rebuild
	// that hits a chain's last step touches only that record, so in LRU
	// order a chain's parent step comes before its child.
	var dirs []string
	for i := range 3 {
		df := fmt.Sprintf("FROM busybox\nRUN head -c 1048576 /dev/urandom > /one%d\nRUN head -c 1048576 /dev/urandom > /two%d\n", i, i)
		dirs = append(dirs, writeContext(t, map[string]string{"Dockerfile": df}))
	}
	for i, d := range dirs {
		e.mustBuild(d, builder.Options{})
		ageRecords(t, e.store, time.Duration(3-i)*time.Hour)
	}
	for _, u := range mustDU(t, e.store) {
		if u.Size <= 0 {
			t.Fatalf("record %s has size %d", u.Key, u.Size)
		}
	}
	total := cacheSize(t, e.store)
	if total < 6<<20 {
		t.Fatalf("cache holds %d bytes, want over 6 MiB", total)
	}
	// Room for about one 2 MiB chain plus busybox.
	limit := total - 3<<20
	rep, err := e.store.Prune(ctx, store.PruneOptions{KeepStorage: limit})
	if err != nil {
		t.Fatal(err)
	}
	if got := cacheSize(t, e.store); got > limit {
		t.Errorf("after --keep-storage %d the cache holds %d (report %+v)", limit, got, rep)
	}
	if rep.Snapshots < 4 {
		t.Errorf("report %+v: want the two oldest chains' snapshots gone", rep)
	}
	// The most recent chain survives whole.
	_, ev := e.mustBuild(dirs[2], builder.Options{})
	for name, st := range ev.statuses() {
		if st != progress.Cached {
			t.Errorf("newest chain after --keep-storage: %s is %s", name, st)
		}
	}
	_, ev = e.mustBuild(dirs[0], builder.Options{})
	for name, st := range ev.statuses() {
		if strings.Contains(name, "RUN") && st != progress.Done {
			t.Errorf("oldest chain after --keep-storage: %s is %s, want it run again", name, st)
		}
	}
}

// waitForBlockedWriteLock waits until /proc/locks shows a process waiting
// for an exclusive flock on path.
func waitForBlockedWriteLock(t *testing.T, path string, done <-chan error) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf(":%d", st.Ino)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("prune finished (%v) while a build had the store open", err)
		default:
		}
		f, err := os.Open("/proc/locks")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// "2: -> FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"
			if len(fs) >= 7 && fs[1] == "->" && fs[2] == "FLOCK" && fs[4] == "WRITE" && strings.HasSuffix(fs[6], suffix) {
				f.Close()
				return
			}
		}
		f.Close()
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing
	}
	t.Fatal("prune never waited for the store lock")
}

func TestPruneWaitsForRunningBuild(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo base > /base\nRUN --mount=type=bind,source=sync,target=/sync cat /sync/fifo > /got && cat /base >> /got\n",
	})
	fifo := filepath.Join(dir, "sync", "fifo")
	if err := os.MkdirAll(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res *builder.Result
		err error
	}
	built := make(chan result, 1)
	go func() {
		res, _, err := e.build(dir, builder.Options{Tags: []string{"waited:1"}, Exports: imageStore(e)})
		built <- result{res, err}
	}()
	// Opening the fifo for writing returns once the RUN step reads it.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// A second store on the same root: its Open sweeps, its Prune must wait
	// for the build's store to close.
	other, err := store.Open(ctx, e.store.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if n := len(snapshotNames(t, other)); n == 0 {
		t.Fatal("opening a second store swept the running build's snapshots")
	}
	pruned := make(chan error, 1)
	var rep store.PruneReport
	go func() {
		var err error
		rep, err = other.Prune(ctx, store.PruneOptions{All: true})
		pruned <- err
	}()
	waitForBlockedWriteLock(t, filepath.Join(e.store.Root(), "store.lock"), pruned)

	if _, err := w.WriteString("from the test\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := <-built
	if r.err != nil {
		t.Fatalf("build under a waiting prune: %v", r.err)
	}
	if got := string(e.readImage(r.res).file(t, "/got").data); got != "from the test\nbase\n" {
		t.Errorf("/got = %q", got)
	}
	select {
	case err := <-pruned:
		t.Fatalf("prune finished (%v) before the build's store closed", err)
	default:
	}
	e.store.Close()
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	if rep.Records < 3 {
		t.Errorf("prune after the build removed %+v", rep)
	}
	// The tagged result survives as a base image.
	if _, err := other.Image(ctx, "waited:1"); err != nil {
		t.Fatal(err)
	}
	next := writeContext(t, map[string]string{"Dockerfile": "FROM waited:1\nRUN cat /got\n"})
	if _, err := builder.Build(ctx, other, builder.Options{ContextDir: next}); err != nil {
		t.Errorf("build FROM the image made while prune waited: %v", err)
	}
}

// strata du adds up to what the store's snapshots hold on disk, even when a
// COPY re-links the files it did not change from its previous result: a
// file shared by two snapshots is counted once.
func TestDiskUsageCountsSharedFilesOnce(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"Dockerfile": "FROM busybox\nCOPY src/ /src/\n"}
	for i := range 200 {
		files[fmt.Sprintf("src/f%03d", i)] = strings.Repeat(fmt.Sprintf("%03d", i), 10000)
	}
	dir := writeContext(t, files)
	e.mustBuild(dir, builder.Options{})
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(dir, "src", "f000"), []byte(fmt.Sprint("edit ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustBuild(dir, builder.Options{})
	}
	var reported int64
	for _, u := range mustDU(t, e.store) {
		reported += u.Size
	}
	out, err := exec.Command("du", "-s", "-B1", filepath.Join(e.store.Root(), "snapshots")).Output()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// Four COPY results of ~6 MB each would be ~24 MB counted one by one.
	t.Logf("du reports %d bytes, the snapshots take %d", reported, onDisk)
	if reported < onDisk*95/100 || reported > onDisk*105/100 {
		t.Errorf("du reports %d bytes, the snapshots take %d on disk: not within 5%%", reported, onDisk)
	}
}

// Prune forgets the links of the records it removes.
func TestPruneDropsLinks(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS b\nRUN echo x > /x\nFROM busybox\nCOPY --from=b /x /x\n"})
	e.mustBuild(dir, builder.Options{})
	links := func() int {
		db, err := metadata.Open(filepath.Join(e.store.Root(), "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket([]byte("links")); b != nil {
				n = b.Stats().KeyN
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := links(); n != 1 {
		t.Fatalf("%d links after a build with one COPY --from, want 1", n)
	}
	if _, err := e.store.Prune(context.Background(), store.PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if n := links(); n != 0 {
		t.Errorf("%d links after prune --all", n)
	}
}
