package solver

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode"

	digest "github.com/opencontainers/go-digest"
)

// Reasons a vertex missed the cache that do not depend on what changed.
const (
	ReasonNoPrevious    = "no previous build of this step"
	ReasonParentMissed  = "parent step missed"
	ReasonNoCache       = "cache disabled (--no-cache)"
	ReasonEvicted       = "result evicted"
	ReasonInputsChanged = "inputs changed"
	ReasonOpChanged     = "step definition changed"
)

// maxShownValue is the longest component value a reason quotes.
const maxShownValue = 40

// explainMiss says why a step whose key parts are now cur missed, given the
// record of its previous build (nil if none). The step's own components are
// compared first, then its inputs in order: the first difference found is
// the reason.
func explainMiss(prev, cur *StepRecord) string {
	switch {
	case prev == nil:
		return ReasonNoPrevious
	case prev.Key == cur.Key:
		return ReasonEvicted
	}
	if r := componentChange(prev.Components, cur.Components); r != "" {
		return r
	}
	if len(prev.Inputs) != len(cur.Inputs) {
		return ReasonInputsChanged
	}
	for i, in := range cur.Inputs {
		old := prev.Inputs[i]
		if old.Key == in.Key {
			continue
		}
		if old.Files == nil && in.Files == nil {
			return ReasonParentMissed
		}
		// A record without the files of a content-keyed input (one an
		// older strata kept, or the input was keyed by its definition)
		// names nothing that could be compared.
		if old.Files != nil {
			if r := fileChange(old.Files, in.Files); r != "" {
				return r
			}
		}
		return fmt.Sprintf("content of input %d changed", i)
	}
	return ReasonOpChanged
}

// componentChange names the first component that differs between old and
// cur, in cur's order, then the first one removed; "" if none differs.
func componentChange(old, cur []Component) string {
	prev := make(map[string]string, len(old))
	for _, c := range old {
		prev[c.Name] = c.Value
	}
	seen := make(map[string]bool, len(cur))
	for _, c := range cur {
		seen[c.Name] = true
		v, ok := prev[c.Name]
		switch {
		case !ok:
			return componentLabel(c.Name) + " added"
		case v != c.Value:
			return changed(componentLabel(c.Name), v, c.Value)
		}
	}
	for _, c := range old {
		if !seen[c.Name] {
			return componentLabel(c.Name) + " removed"
		}
	}
	return ""
}

// componentLabel is how a component is named to a user: "arg X" is a build arg.
func componentLabel(name string) string {
	if strings.HasPrefix(name, "arg ") {
		return "build " + name
	}
	return name
}

func changed(label, from, to string) string {
	if !shortValue(from) || !shortValue(to) {
		return label + " changed"
	}
	return fmt.Sprintf("%s changed from %s to %s", label, showValue(from), showValue(to))
}

func shortValue(v string) bool {
	return len(v) <= maxShownValue && !strings.ContainsAny(v, "\n\r")
}

// showValue prints v bare when that is unambiguous, quoted otherwise.
func showValue(v string) string {
	odd := func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' || r == '\'' }
	if v == "" || strings.IndexFunc(v, odd) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

// maxShownFiles is how many paths a reason lists of each kind of change.
const maxShownFiles = 3

// fileChange says which files changed, were added or were removed between
// old and cur, by the keys of the maps (the paths the files are read from:
// "app/main.go" in the build context, "/out/app" in a stage); "" if the
// sets are equal:
//
//	app/main.go changed
//	3 files changed: app/a.go, app/b.go, app/c.go
//	app/a.go changed; 4 files added: app/new, app/x.go, app/y.go, ...
//
// Below an added or removed directory only the directory is named.
func fileChange(old, cur map[string]digest.Digest) string {
	var changed, added, removed []string
	for n, d := range cur {
		switch o, ok := old[n]; {
		case !ok:
			added = append(added, n)
		case o != d:
			changed = append(changed, n)
		}
	}
	for n := range old {
		if _, ok := cur[n]; !ok {
			removed = append(removed, n)
		}
	}
	var parts []string
	for _, k := range []struct {
		names []string
		verb  string
	}{{changed, "changed"}, {topmost(added), "added"}, {topmost(removed), "removed"}} {
		if s := fileList(k.names, k.verb); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// fileList is "a changed" for one name, "3 files changed: a, b, c" for
// more, listing at most maxShownFiles of them in sorted order.
func fileList(names []string, verb string) string {
	sort.Strings(names)
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0] + " " + verb
	}
	shown := strings.Join(names[:min(len(names), maxShownFiles)], ", ")
	if len(names) > maxShownFiles {
		shown += ", ..."
	}
	return fmt.Sprintf("%d files %s: %s", len(names), verb, shown)
}

// topmost drops the paths that lie below another path of names.
func topmost(names []string) []string {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	out := names[:0]
	for _, n := range names {
		below := false
		for d := n; d != "." && d != "/" && !below; {
			d = path.Dir(d)
			below = set[d]
		}
		if !below {
			out = append(out, n)
		}
	}
	return out
}
