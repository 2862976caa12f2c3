package progress

import (
	"fmt"
	"strings"
)

// Mode is a kind of progress output.
type Mode string

const (
	// ModeAuto is ModeTTY when the output is a terminal, else ModePlain.
	ModeAuto Mode = "auto"
	// ModeTTY is a live view of the running steps, redrawn in place.
	ModeTTY Mode = "tty"
	// ModePlain is one line per change, for logs.
	ModePlain Mode = "plain"
	// ModeRawJSON is one BuildKit SolveStatus JSON object per line.
	ModeRawJSON Mode = "rawjson"
	// ModeQuiet shows nothing.
	ModeQuiet Mode = "quiet"
)

// Modes lists the modes a user may ask for, in the order help text gives
// them.
var Modes = []Mode{ModeAuto, ModeTTY, ModePlain, ModeRawJSON, ModeQuiet}

// ModeEnv is the environment variable that picks the mode when the
// command line does not, as with BuildKit's clients.
const ModeEnv = "BUILDKIT_PROGRESS"

// Choice is the progress output a command settled on.
type Choice struct {
	// Mode is never ModeAuto.
	Mode Mode
	// Color is whether a tty view may use colour.
	Color bool
}

// Choose decides the progress output from the --progress flag (value, and
// whether it was given at all), the environment (lookup is os.LookupEnv
// or a stand-in) and whether the output is a terminal. It reads nothing
// else, so a table of cases tests it.
//
// A given flag wins; otherwise a non-empty BUILDKIT_PROGRESS names the
// mode; otherwise the flag's default applies. auto becomes tty on a
// terminal and plain elsewhere, and plain on a terminal that declares
// itself dumb (TERM=dumb). Colour is for tty views only, and off when
// NO_COLOR is set to anything but the empty string or TERM is dumb. An
// unknown mode is an error that names where it came from.
func Choose(flag string, flagSet bool, lookup func(string) (string, bool), terminal bool) (Choice, error) {
	value, source := flag, "--progress"
	if !flagSet {
		if v, ok := lookup(ModeEnv); ok && v != "" {
			value, source = v, ModeEnv
		}
	}
	m, err := ParseMode(value)
	if err != nil {
		return Choice{}, fmt.Errorf("%s: %w", source, err)
	}
	term, _ := lookup("TERM")
	dumb := term == "dumb"
	if m == ModeAuto {
		m = ModePlain
		if terminal && !dumb {
			m = ModeTTY
		}
	}
	noColor, _ := lookup("NO_COLOR")
	return Choice{Mode: m, Color: m == ModeTTY && noColor == "" && !dumb}, nil
}

// ParseMode reads a mode's name; "" is auto.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeAuto, nil
	}
	for _, m := range Modes {
		if s == string(m) {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown mode %q (%s)", s, strings.Join(names, ", "))
}
