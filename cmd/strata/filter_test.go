package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/store"
)

func TestImageFilters(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idA, idB := digest.FromString("a"), digest.FromString("b")
	img := func(name string, id digest.Digest, hours int, labels map[string]string) store.Summary {
		return store.Summary{Image: store.Image{Name: name, Target: ocispec.Descriptor{Digest: digest.FromString(name)}, Created: t0.Add(time.Duration(hours) * time.Hour)}, ID: id, Labels: labels}
	}
	list := []store.Summary{
		img("docker.io/library/busybox:latest", idA, 0, nil),
		img("docker.io/library/busybox:1.36", idA, 1, nil),
		img("docker.io/team/app:1.2", idB, 2, map[string]string{"tier": "web", "beta": ""}),
		img("127.0.0.1:5000/team/app:1.3", idB, 3, map[string]string{"tier": "db"}),
		img("docker.io/library/app@"+digest.FromString("m").String(), idB, 4, nil),
	}
	for _, tc := range []struct {
		filters []string
		want    string // the familiar names listed, space-separated
	}{
		{nil, "busybox:latest busybox:1.36 team/app:1.2 127.0.0.1:5000/team/app:1.3 app@" + digest.FromString("m").String()},
		{[]string{"dangling=true"}, "app@" + digest.FromString("m").String()},
		{[]string{"dangling=false"}, "busybox:latest busybox:1.36 team/app:1.2 127.0.0.1:5000/team/app:1.3"},
		{[]string{"reference=busy*"}, "busybox:latest busybox:1.36"},
		{[]string{"reference=busybox:1.*"}, "busybox:1.36"},
		{[]string{"reference=*/app:1.*"}, "team/app:1.2"},
		{[]string{"reference=*/*/app"}, "127.0.0.1:5000/team/app:1.3"},
		{[]string{"reference=busybox", "reference=team/app"}, "busybox:latest busybox:1.36 team/app:1.2"},
		{[]string{"before=team/app:1.2"}, "busybox:latest busybox:1.36"},
		{[]string{"since=busybox:1.36"}, "team/app:1.2 127.0.0.1:5000/team/app:1.3 app@" + digest.FromString("m").String()},
		{[]string{"since=busybox", "before=" + idB.Encoded()[:12]}, "busybox:1.36"},
		{[]string{"before=sha256:" + idB.Encoded()}, "busybox:latest busybox:1.36"},
		{[]string{"label=tier"}, "team/app:1.2 127.0.0.1:5000/team/app:1.3"},
		{[]string{"label=tier=db"}, "127.0.0.1:5000/team/app:1.3"},
		{[]string{"label=tier", "label=beta="}, "team/app:1.2"},
		{[]string{"LABEL = tier=web", "reference=team/*"}, "team/app:1.2"},
	} {
		f, err := parseImageFilters(tc.filters)
		if err != nil {
			t.Errorf("%q: %v", tc.filters, err)
			continue
		}
		out, err := f.apply(list)
		if err != nil {
			t.Errorf("%q: %v", tc.filters, err)
			continue
		}
		var got []string
		for _, s := range out {
			got = append(got, rowOf(s, t0).Repository+sep(rowOf(s, t0).Tag, s.Name))
		}
		if diff := cmp.Diff(tc.want, strings.Join(got, " ")); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.filters, diff)
		}
	}

	for _, tc := range []struct {
		filters []string
		usage   bool
		want    string
	}{
		{[]string{"color=red"}, true, `unknown filter "color" (valid: before, dangling, label, reference, since)`},
		{[]string{"dangling"}, true, "want KEY=VALUE"},
		{[]string{"dangling=maybe"}, true, "dangling is true or false"},
		{[]string{"dangling=true", "dangling=false"}, true, "conflicts with dangling=true"},
		{[]string{"reference=[a"}, true, "bad pattern"},
		{[]string{"label="}, true, "want label=KEY"},
		{[]string{"before=nothere"}, false, "before=nothere: no such image: nothere"},
		{[]string{"since=ffff"}, false, "since=ffff: no such image"},
		{[]string{"since=sha256:"}, false, "no such image"},
	} {
		f, err := parseImageFilters(tc.filters)
		if err == nil {
			_, err = f.apply(list)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || isUsage(err) != tc.usage {
			t.Errorf("%q: %v, want an error (usage %t) containing %q", tc.filters, err, tc.usage, tc.want)
		}
	}
}

// sep joins a row's repository and tag back into the familiar name.
func sep(tag, name string) string {
	if i := strings.IndexByte(name, '@'); i >= 0 {
		return name[i:]
	}
	return ":" + tag
}
