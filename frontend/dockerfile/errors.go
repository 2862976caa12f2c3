package dockerfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/strata-build/strata/llb"
)

// Error is a conversion failure tied to a place in the Dockerfile.
type Error struct {
	// Location is the instruction's line range; StartLine is 0 when the
	// failure has no line (an empty Dockerfile, an unknown --target).
	Location llb.Location
	// Line is the source text of the lines in Location.
	Line string
	// Msg says what is wrong.
	Msg string

	err error
}

// Error prints "Dockerfile:7: unknown instruction: RUNN" and, below it,
// the source lines as Excerpt shows them.
func (e *Error) Error() string {
	if e.Location.StartLine == 0 {
		return fmt.Sprintf("%s: %s", e.Location.File, e.Msg)
	}
	msg := fmt.Sprintf("%s:%d: %s", e.Location.File, e.Location.StartLine, e.Msg)
	if e.Line == "" {
		return msg
	}
	return msg + "\n" + Excerpt(e.Location, strings.Split(e.Line, "\n"))
}

// Unwrap returns the underlying error, e.g. the resolver's for a missing
// base image.
func (e *Error) Unwrap() error { return e.err }

var parseErrPrefix = regexp.MustCompile(`^dockerfile parse error on line \d+: `)

// newError builds an *Error for err at loc. When loc is empty, the location
// recorded in err by the parser packages, if any, is used.
func (c *converter) newError(err error, loc []parser.Range) error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	var le *parser.LocationError
	if len(loc) == 0 && errors.As(err, &le) && len(le.Locations) > 0 {
		loc = le.Locations[0]
	}
	msg := parseErrPrefix.ReplaceAllString(err.Error(), "")
	e := &Error{Location: c.location(loc), Msg: msg, err: err}
	if e.Location.StartLine > 0 {
		e.Line = c.sourceLines(e.Location)
		e.Msg = flagMessage(msg, e.Line)
	}
	return e
}

// errorf is newError for a message of the converter's own.
func (c *converter) errorf(loc []parser.Range, format string, args ...any) error {
	return c.newError(fmt.Errorf(format, args...), loc)
}

// location merges parser ranges into one llb.Location.
func (c *converter) location(loc []parser.Range) llb.Location {
	l := llb.Location{File: c.opts.Filename}
	for _, r := range loc {
		if l.StartLine == 0 || r.Start.Line < l.StartLine {
			l.StartLine = r.Start.Line
		}
		if r.End.Line > l.EndLine {
			l.EndLine = r.End.Line
		}
	}
	if l.EndLine < l.StartLine {
		l.EndLine = l.StartLine
	}
	return l
}

func (c *converter) sourceLines(l llb.Location) string {
	if l.StartLine < 1 || l.StartLine > len(c.lines) {
		return ""
	}
	end := min(l.EndLine, len(c.lines))
	return strings.Join(c.lines[l.StartLine-1:end], "\n")
}
