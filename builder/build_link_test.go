package builder_test

import (
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/builder"
	"github.com/strata-build/strata/cache"
	"github.com/strata-build/strata/internal/progress"
)

// A --link copy lands on the stage root as its own layer: the files it
// copies replace those of the base, the base's other files stay, and the
// layer holds only what was copied (no base file, no whiteout).
func TestCopyLinkFilesAndLayer(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox
RUN mkdir -p /app && echo old > /app/keep && echo base > /app/over && chmod 0700 /app && chown 5:6 /app
COPY --link --chown=1000:1001 new.txt /app/over
COPY --link dir/ /srv/
COPY --link <<EOF /etc/motd
hello
EOF
RUN stat -c '%a %u:%g %n' /app /app/over /app/keep > /stat && cat /app/over /app/keep /etc/motd > /all
`
	img := e.buildImage(map[string]string{"Dockerfile": df, "new.txt": "new\n", "dir/a": "a\n", "dir/sub/b": "b\n"}, builder.Options{})
	checkFiles(t, img, map[string]want{
		"/app/over":  {data: "new\n", mode: 0o644, uid: 1000, gid: 1001},
		"/app/keep":  {data: "old\n", mode: 0o644},
		"/srv/a":     {data: "a\n", mode: 0o644},
		"/srv/sub/b": {data: "b\n", mode: 0o644},
		"/etc/motd":  {data: "hello\n", mode: 0o644},
		"/all":       {data: "new\nold\nhello\n", mode: 0o644},
	})
	// The RUN after the merges sees the merged snapshot, not just the layers.
	stat := string(img.file(t, "/stat").data)
	// The copy's parent dirs are made as if the base had none: /app takes
	// the copy's 0755 and owner over the base's 0700 5:6.
	if stat != "755 1000:1001 /app\n644 1000:1001 /app/over\n644 0:0 /app/keep\n" {
		t.Errorf("/stat in the merged tree:\n%s", stat)
	}
	if etc := img.file(t, "/etc/passwd"); len(etc.data) == 0 {
		t.Error("/etc/passwd of the base is empty after a --link copy into /etc")
	}

	h := img.config.History
	var created []string
	for _, x := range h[len(h)-4:] {
		created = append(created, x.CreatedBy)
	}
	wantHist := []string{
		"COPY --chown=1000:1001 new.txt /app/over # buildkit",
		"COPY dir/ /srv/ # buildkit",
		"COPY <<EOF /etc/motd # buildkit",
		"RUN /bin/sh -c stat -c '%a %u:%g %n' /app /app/over /app/keep > /stat && cat /app/over /app/keep /etc/motd > /all # buildkit",
	}
	if strings.Join(created, "\n") != strings.Join(wantHist, "\n") {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(created, "\n"), strings.Join(wantHist, "\n"))
	}
	if n := len(img.layers); n != 6 {
		t.Fatalf("%d layers, want 6 (busybox, RUN, three --link copies, RUN)", n)
	}
	wantNames := [][]string{{"app/", "app/over"}, {"srv/", "srv/a", "srv/sub/", "srv/sub/b"}, {"etc/", "etc/motd"}}
	for i, names := range wantNames {
		var got []string
		for _, en := range img.layers[2+i] {
			got = append(got, strings.TrimPrefix(en.hdr.Name, "./"))
		}
		if strings.Join(got, " ") != strings.Join(names, " ") {
			t.Errorf("layer %d of --link copy %d holds %v, want %v", 2+i, i+1, got, names)
		}
	}
}

// Changing the base under a --link copy re-runs only the merge: the copy
// stays cached and the image's layer for it is the same blob, made once.
func TestCopyLinkCachedAcrossBases(t *testing.T) {
	e := newEnv(t)
	df := `ARG BASE=one
FROM busybox AS one
RUN echo one > /base
FROM busybox AS two
RUN echo two > /base
FROM ${BASE}
COPY --link --chown=7:8 a.txt /opt/a.txt
`
	dir := writeContext(t, map[string]string{"Dockerfile": df, "a.txt": "payload\n"})
	res1, ev1 := e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"BASE": "one"}})
	res2, ev2 := e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"BASE": "two"}})
	wantStatus(t, "first build", ev1, map[string]progress.Status{
		"] COPY --link --chown=7:8 a.txt /opt/a.txt":      progress.Done,
		"] LINK COPY --link --chown=7:8 a.txt /opt/a.txt": progress.Done,
	})
	wantStatus(t, "new base", ev2, map[string]progress.Status{
		"] COPY --link --chown=7:8 a.txt /opt/a.txt":      progress.Cached,
		"] LINK COPY --link --chown=7:8 a.txt /opt/a.txt": progress.Done,
	})
	img1, img2 := e.readImage(res1), e.readImage(res2)
	for name, img := range map[string]*image{"one": img1, "two": img2} {
		checkFiles(t, img, map[string]want{
			"/opt/a.txt": {data: "payload\n", mode: 0o644, uid: 7, gid: 8},
			"/base":      {data: name + "\n", mode: 0o644},
		})
	}
	l1 := img1.manifest.Layers[len(img1.manifest.Layers)-1]
	l2 := img2.manifest.Layers[len(img2.manifest.Layers)-1]
	if l1.Digest != l2.Digest || l1.Size != l2.Size {
		t.Fatalf("--link layer differs across bases: %s (%d bytes) vs %s (%d bytes)", l1.Digest, l1.Size, l2.Digest, l2.Size)
	}
	d1 := img1.config.RootFS.DiffIDs
	if d2 := img2.config.RootFS.DiffIDs; d1[len(d1)-1] != d2[len(d2)-1] || d1[len(d1)-2] == d2[len(d2)-2] {
		t.Errorf("diff ids: %v vs %v, want only the last one shared", d1, d2)
	}
	// The copy's snapshot and both merged snapshots name one blob: it was
	// compressed once, when the first merge ran.
	if n := layerRecords(t, e.store.Parts().Records, l1.Digest); n != 3 {
		t.Errorf("%d layer records name %s, want 3 (the copy and two merges)", n, l1.Digest)
	}
	for _, en := range img1.layers[len(img1.layers)-1] {
		if strings.Contains(en.hdr.Name, ".wh.") {
			t.Errorf("--link layer has whiteout %s", en.hdr.Name)
		}
	}

	// The same copy onto scratch is the copy's own tree and layer.
	df0 := "FROM scratch\nCOPY --link --chown=7:8 a.txt /opt/a.txt\n"
	res0, ev0 := e.mustBuild(writeContext(t, map[string]string{"Dockerfile": df0, "a.txt": "payload\n"}), builder.Options{})
	wantStatus(t, "scratch base", ev0, map[string]progress.Status{"] COPY --link --chown=7:8 a.txt /opt/a.txt": progress.Cached})
	if ls := e.readImage(res0).manifest.Layers; len(ls) != 1 || ls[0].Digest != l1.Digest {
		t.Errorf("FROM scratch layers %v, want only %s", ls, l1.Digest)
	}
}

// wantStatus checks the final status of the vertices whose names end in
// each suffix.
func wantStatus(t *testing.T, what string, ev *events, want map[string]progress.Status) {
	t.Helper()
	got := ev.statuses()
	for suffix, st := range want {
		found := false
		for name, s := range got {
			if strings.HasSuffix(name, suffix) {
				found = true
				if s != st {
					t.Errorf("%s: %s is %s, want %s", what, name, s, st)
				}
			}
		}
		if !found {
			t.Errorf("%s: no vertex named ...%s in %v", what, suffix, got)
		}
	}
}

func layerRecords(t *testing.T, recs *cache.Records, blob digest.Digest) int {
	t.Helper()
	n := 0
	err := recs.WalkLayers(func(_ string, l cache.Layer) error {
		if l.Blob.Digest == blob {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// With SOURCE_DATE_EPOCH the merged snapshot's layer is made from its own
// diff: still only the copied files, with clamped times, the same on any base.
func TestCopyLinkSourceDateEpoch(t *testing.T) {
	e := newEnv(t)
	df := "ARG BASE=one\nFROM busybox AS one\nRUN echo one > /base\nFROM busybox AS two\nRUN echo two > /base\nFROM ${BASE}\nCOPY --link a.txt /opt/a.txt\n"
	dir := writeContext(t, map[string]string{"Dockerfile": df, "a.txt": "payload\n"})
	var last []string
	for _, base := range []string{"one", "two"} {
		res, _ := e.mustBuild(dir, builder.Options{BuildArgs: map[string]string{"BASE": base, "SOURCE_DATE_EPOCH": "1000000000"}})
		img := e.readImage(res)
		checkFiles(t, img, map[string]want{"/opt/a.txt": {data: "payload\n", mode: 0o644}, "/base": {data: base + "\n", mode: 0o644}})
		var got []string
		for _, en := range img.layers[len(img.layers)-1] {
			got = append(got, strings.TrimPrefix(en.hdr.Name, "./"))
			if en.hdr.ModTime.Unix() > 1000000000 {
				t.Errorf("base %s: %s mtime %s after SOURCE_DATE_EPOCH", base, en.hdr.Name, en.hdr.ModTime)
			}
		}
		got = append(got, img.manifest.Layers[len(img.manifest.Layers)-1].Digest.String())
		if strings.Join(got[:len(got)-1], " ") != "opt/ opt/a.txt" {
			t.Errorf("base %s: --link layer holds %v", base, got[:len(got)-1])
		}
		if last != nil && strings.Join(last, " ") != strings.Join(got, " ") {
			t.Errorf("--link layer differs across bases: %v vs %v", last, got)
		}
		last = got
	}
}
