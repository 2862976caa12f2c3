package progress

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// stepEnd is how one vertex ended, as a renderer saw it, for the summary.
type stepEnd struct {
	id     int
	name   string
	status Status // Cached, Done or Error; Started if it never ended
	took   time.Duration
}

// summaryName is the longest step name the summary shows.
const summaryName = 40

// summary is the line a renderer writes at the end of a build: how many
// steps ran, came from the cache, failed or never ended, and the three
// slowest that ran (of those that took 0.05s or more), with their times:
//
//	strata: 7 steps: 2 run, 5 cached; slowest: 1.2s #4 RUN make, 0.3s #3 COPY . .
//
// Names lose their "[stage 2/4] " prefix (the #N tells the step) and are
// cut to 40 characters. No steps, no line: "".
func summary(steps []stepEnd) string {
	if len(steps) == 0 {
		return ""
	}
	var run, cached, failed, unfinished int
	var ran []stepEnd
	for _, s := range steps {
		switch s.status {
		case Done:
			run++
			ran = append(ran, s)
		case Cached:
			cached++
		case Error:
			failed++
			ran = append(ran, s)
		default:
			unfinished++
		}
	}
	var b strings.Builder
	noun := "steps"
	if len(steps) == 1 {
		noun = "step"
	}
	fmt.Fprintf(&b, "strata: %d %s: %d run, %d cached", len(steps), noun, run, cached)
	if failed > 0 {
		fmt.Fprintf(&b, ", %d failed", failed)
	}
	if unfinished > 0 {
		fmt.Fprintf(&b, ", %d unfinished", unfinished)
	}
	slices.SortStableFunc(ran, func(a, b stepEnd) int {
		return cmp.Or(cmp.Compare(b.took, a.took), cmp.Compare(a.id, b.id))
	})
	// A step that took less than 0.05s would show as 0.0s: it says nothing.
	ran = slices.DeleteFunc(ran, func(s stepEnd) bool { return s.took < 50*time.Millisecond })
	for i, s := range ran[:min(3, len(ran))] {
		if i == 0 {
			b.WriteString("; slowest: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.1fs #%d %s", s.took.Seconds(), s.id, shortName(s.name))
	}
	return b.String()
}

// shortName drops a leading "[...] " from a step's name and cuts it to
// summaryName characters.
func shortName(name string) string {
	if strings.HasPrefix(name, "[") {
		if i := strings.Index(name, "] "); i > 0 {
			name = name[i+2:]
		}
	}
	if r := []rune(name); len(r) > summaryName {
		name = string(r[:summaryName-3]) + "..."
	}
	return name
}
