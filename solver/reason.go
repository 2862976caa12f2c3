package solver

import (
	"fmt"
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
		if r := fileChange(old.Files, in.Files); r != "" {
			return r
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

// fileChange names the first file, in sorted order, that changed, was added
// or was removed between old and cur; "" if the sets are equal.
func fileChange(old, cur map[string]digest.Digest) string {
	names := make([]string, 0, len(old)+len(cur))
	for n := range old {
		names = append(names, n)
	}
	for n := range cur {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		o, inOld := old[n]
		c, inCur := cur[n]
		switch {
		case !inOld:
			return "file " + n + " added"
		case !inCur:
			return "file " + n + " removed"
		case o != c:
			return "file " + n + " changed"
		}
	}
	return ""
}
