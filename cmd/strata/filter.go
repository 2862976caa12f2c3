package main

import (
	"fmt"
	"path"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/cache/images"
	"github.com/strata-build/strata/internal/errdefs"
	"github.com/strata-build/strata/store"
)

// imageFilterKeys are the keys `strata images --filter` takes.
var imageFilterKeys = []string{"before", "dangling", "label", "reference", "since"}

// imageFilter is the --filter values of `strata images`, as docker's: an
// image is listed when it matches one of the reference patterns (if any)
// and every other filter.
type imageFilter struct {
	dangling      *bool
	references    []string // globs over the familiar name
	before, since []string // images, by name or ID
	labels        []string // KEY or KEY=VALUE
}

// parseImageFilters reads KEY=VALUE filters; a malformed one or an unknown
// key is a usage error.
func parseImageFilters(vals []string) (imageFilter, error) {
	var f imageFilter
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if !ok || k == "" {
			return f, usagef("--filter %q: want KEY=VALUE", v)
		}
		switch k {
		case "dangling":
			var b bool
			switch strings.ToLower(val) {
			case "true", "1":
				b = true
			case "false", "0":
			default:
				return f, usagef("--filter %q: dangling is true or false", v)
			}
			if f.dangling != nil && *f.dangling != b {
				return f, usagef("--filter %q: conflicts with dangling=%t", v, *f.dangling)
			}
			f.dangling = &b
		case "reference":
			if _, err := path.Match(val, ""); err != nil || val == "" {
				return f, usagef("--filter %q: bad pattern", v)
			}
			f.references = append(f.references, val)
		case "before", "since":
			if val == "" {
				return f, usagef("--filter %q: want %s=IMAGE", v, k)
			}
			if k == "before" {
				f.before = append(f.before, val)
			} else {
				f.since = append(f.since, val)
			}
		case "label":
			if val == "" || strings.HasPrefix(val, "=") {
				return f, usagef("--filter %q: want label=KEY or label=KEY=VALUE", v)
			}
			f.labels = append(f.labels, val)
		default:
			return f, usagef("--filter %q: unknown filter %q (valid: %s)", v, k, strings.Join(imageFilterKeys, ", "))
		}
	}
	return f, nil
}

// apply keeps the images of list that match. before= and since= name
// images of list (by name or ID); one that is not there is an error.
func (f imageFilter) apply(list []store.Summary) ([]store.Summary, error) {
	var after, until time.Time // since: created after; before: created before
	for _, ref := range f.before {
		t, err := createdOf(list, ref)
		if err != nil {
			return nil, fmt.Errorf("--filter before=%s: %w", ref, err)
		}
		if until.IsZero() || t.Before(until) {
			until = t
		}
	}
	for _, ref := range f.since {
		t, err := createdOf(list, ref)
		if err != nil {
			return nil, fmt.Errorf("--filter since=%s: %w", ref, err)
		}
		if t.After(after) {
			after = t
		}
	}
	var out []store.Summary
	for _, img := range list {
		switch {
		case f.dangling != nil && *f.dangling != (images.Tag(img.Name) == ""),
			len(f.references) > 0 && !matchesReference(f.references, img.Name),
			!until.IsZero() && !img.Created.Before(until),
			!after.IsZero() && !img.Created.After(after),
			!hasLabels(img.Labels, f.labels):
			continue
		}
		out = append(out, img)
	}
	return out, nil
}

// matchesReference reports whether one of the patterns matches the
// familiar form of name, or that form without its tag or digest, as
// docker's reference filter does (path.Match: * stops at a /).
func matchesReference(patterns []string, name string) bool {
	fam := images.Familiar(name)
	repo, _, _ := strings.Cut(fam, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, fam); ok {
			return true
		}
		if ok, _ := path.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// hasLabels reports whether labels has every KEY or KEY=VALUE of want.
func hasLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, withValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (withValue && got != v) {
			return false
		}
	}
	return true
}

// createdOf is when the image ref of list was created: ref is a name, or
// an image ID or a prefix of one (with or without "sha256:"); an ID that
// several names share takes the earliest of them.
func createdOf(list []store.Summary, ref string) (time.Time, error) {
	if name, err := images.Normalize(ref); err == nil {
		for _, img := range list {
			if img.Name == name {
				return img.Created, nil
			}
		}
	}
	id, err := matchID(list, ref)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	for _, img := range list {
		if img.ID == id && (t.IsZero() || img.Created.Before(t)) {
			t = img.Created
		}
	}
	return t, nil
}

// matchID finds the one image ID of list that ref (an ID, or a prefix of
// one, with or without "sha256:") names.
func matchID(list []store.Summary, ref string) (digest.Digest, error) {
	hex := strings.TrimPrefix(ref, string(digest.SHA256)+":")
	if hex == "" || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", noSuchImage(ref)
	}
	var found digest.Digest
	for _, img := range list {
		if img.ID == "" || !strings.HasPrefix(img.ID.Encoded(), hex) || img.ID == found {
			continue
		}
		if found != "" {
			return "", fmt.Errorf("image ID %s is ambiguous: %s and %s", ref, found.Encoded()[:12], img.ID.Encoded()[:12])
		}
		found = img.ID
	}
	if found == "" {
		return "", noSuchImage(ref)
	}
	return found, nil
}

// noSuchImage is the error of a lookup that found no image: it is an
// errdefs.ErrNotFound.
type noSuchImage string

func (e noSuchImage) Error() string        { return "no such image: " + string(e) }
func (e noSuchImage) Is(target error) bool { return target == errdefs.ErrNotFound }
