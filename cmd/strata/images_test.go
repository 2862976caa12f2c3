package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/store"
)

func TestPrintImages(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	id := digest.FromString("config")
	mf := digest.FromString("manifest")
	list := []store.Summary{
		{Image: store.Image{Name: "docker.io/library/busybox:latest", Target: ocispec.Descriptor{Digest: mf}, Created: now.Add(-3 * time.Hour)}, ID: id, Size: 1 << 20},
		{Image: store.Image{Name: "127.0.0.1:5000/team/app:1", Target: ocispec.Descriptor{Digest: mf}, Created: now.Add(-30 * time.Second)}, ID: id, Size: 2048},
		{Image: store.Image{Name: "docker.io/library/app@" + mf.String(), Target: ocispec.Descriptor{Digest: mf}, Created: now.Add(-10 * 24 * time.Hour)}, Size: -1},
	}
	short := id.Encoded()[:12]
	for _, tc := range []struct {
		name   string
		flags  imagesFlags
		golden string
	}{
		{"columns", imagesFlags{}, "" +
			"REPOSITORY             TAG      IMAGE ID       CREATED                  SIZE\n" +
			"busybox                latest   " + short + "   3 hours ago              1.0MB\n" +
			"127.0.0.1:5000/team/app   1     " + short + "   Less than a minute ago   2.0kB\n"},
		{"digests", imagesFlags{digests: true}, "" +
			"REPOSITORY   TAG   DIGEST   IMAGE ID   CREATED   SIZE\n" +
			"busybox   latest   " + mf.String() + "   " + short + "   3 hours ago   1.0MB\n" +
			"127.0.0.1:5000/team/app   1   " + mf.String() + "   " + short + "   Less than a minute ago   2.0kB\n"},
		{"table", imagesFlags{format: `table {{.Repository}}\t{{.Size}}\t{{lower .CreatedSince}}`}, "" +
			"REPOSITORY   SIZE   CREATED\n" +
			"busybox   1.0MB   3 hours ago\n" +
			"127.0.0.1:5000/team/app   2.0kB   less than a minute ago\n"},
		{"quiet", imagesFlags{quiet: true}, short + "\n<missing>\n"},
		{"json", imagesFlags{format: "json"}, "" +
			`{"Repository":"busybox","Tag":"latest","ID":"` + short + `","Digest":"` + mf.String() + `","CreatedAt":"2026-12-02 09:00:00 +0000 UTC","CreatedSince":"3 hours ago","Size":"1.0MB"}` + "\n" +
			`{"Repository":"127.0.0.1:5000/team/app","Tag":"1","ID":"` + short + `","Digest":"` + mf.String() + `","CreatedAt":"2026-12-02 11:59:30 +0000 UTC","CreatedSince":"Less than a minute ago","Size":"2.0kB"}` + "\n" +
			`{"Repository":"app","Tag":"<none>","ID":"<missing>","Digest":"` + mf.String() + `","CreatedAt":"2026-11-22 12:00:00 +0000 UTC","CreatedSince":"10 days ago","Size":"-"}` + "\n"},
		{"format", imagesFlags{format: "{{.Repository}}:{{.Tag}} {{.ID}} {{.CreatedSince}}"}, "" +
			"busybox:latest " + short + " 3 hours ago\n" +
			"127.0.0.1:5000/team/app:1 " + short + " Less than a minute ago\n" +
			"app:<none> <missing> 10 days ago\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, err := tc.flags.formatter()
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			rows := list
			table := tc.name == "columns" || tc.name == "digests" || tc.name == "table"
			if table {
				rows = list[:2]
			}
			if err := printImages(&b, rows, tc.flags, fm, now); err != nil {
				t.Fatal(err)
			}
			if table {
				// tabwriter pads per column; compare the cells, not the spaces.
				if got, want := fields(b.String()), fields(tc.golden); !cmp.Equal(got, want) {
					t.Errorf("output:\n%s\nwant cells %q", b.String(), want)
				}
				return
			}
			if diff := cmp.Diff(tc.golden, b.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (imagesFlags{format: "{{.Nope"}).formatter(); err == nil || !isUsage(err) {
		t.Errorf("a bad --format: %v, want a usage error", err)
	}
}

// fields splits output into lines of cells separated by two or more spaces.
func fields(s string) [][]string {
	var out [][]string
	for _, line := range bytes.Split([]byte(s), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var cells []string
		for _, c := range bytes.Split(line, []byte("   ")) {
			if c := bytes.TrimSpace(c); len(c) > 0 {
				cells = append(cells, string(c))
			}
		}
		out = append(out, cells)
	}
	return out
}

func TestSince(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{
		10 * time.Second:     "Less than a minute ago",
		time.Minute:          "1 minute ago",
		5 * time.Minute:      "5 minutes ago",
		time.Hour:            "An hour ago",
		47 * time.Hour:       "47 hours ago",
		3 * 24 * time.Hour:   "3 days ago",
		21 * 24 * time.Hour:  "3 weeks ago",
		90 * 24 * time.Hour:  "3 months ago",
		800 * 24 * time.Hour: "2 years ago",
	} {
		if got := since(now.Add(-d), now); got != want {
			t.Errorf("since(%v) = %q, want %q", d, got, want)
		}
	}
}
