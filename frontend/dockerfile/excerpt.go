package dockerfile

import (
	"fmt"
	"strings"

	"github.com/strata-build/strata/llb"
)

// excerptRule frames the source lines of an Excerpt.
const excerptRule = "--------------------"

// Excerpt is how an error shows where it comes from in a Dockerfile: the
// location, then the source lines between rules, those of the location
// marked ">>>". lines are the source lines of loc, from loc.StartLine on.
// With no lines it is the location alone. It does not end with a newline.
//
//	Dockerfile:4
//	--------------------
//	   4 | >>> RUN exit 7
//	--------------------
func Excerpt(loc llb.Location, lines []string) string {
	if len(lines) == 0 {
		return loc.String()
	}
	var b strings.Builder
	b.WriteString(loc.String())
	b.WriteString("\n" + excerptRule + "\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "%4d | >>> %s\n", loc.StartLine+i, l)
	}
	b.WriteString(excerptRule)
	return b.String()
}
