package progress

import (
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    string
		set     bool
		env     map[string]string
		term    bool
		want    Choice
		wantErr string
	}{
		{name: "auto on a terminal", flag: "auto", term: true, want: Choice{ModeTTY, true}},
		{name: "auto elsewhere", flag: "auto", want: Choice{ModePlain, false}},
		{name: "auto on a dumb terminal", flag: "auto", term: true, env: map[string]string{"TERM": "dumb"}, want: Choice{ModePlain, false}},
		{name: "tty asked on a dumb terminal", flag: "tty", set: true, term: true, env: map[string]string{"TERM": "dumb"}, want: Choice{ModeTTY, false}},
		{name: "tty asked elsewhere", flag: "tty", set: true, want: Choice{ModeTTY, true}},
		{name: "NO_COLOR", flag: "auto", term: true, env: map[string]string{"NO_COLOR": "1"}, want: Choice{ModeTTY, false}},
		{name: "empty NO_COLOR", flag: "auto", term: true, env: map[string]string{"NO_COLOR": ""}, want: Choice{ModeTTY, true}},
		{name: "plain on a terminal", flag: "plain", set: true, term: true, want: Choice{ModePlain, false}},
		{name: "rawjson", flag: "rawjson", set: true, term: true, want: Choice{ModeRawJSON, false}},
		{name: "quiet", flag: "quiet", set: true, want: Choice{ModeQuiet, false}},
		{name: "empty flag is auto", flag: "", set: true, term: true, want: Choice{ModeTTY, true}},
		{name: "environment when no flag", flag: "auto", term: true, env: map[string]string{"BUILDKIT_PROGRESS": "plain"}, want: Choice{ModePlain, false}},
		{name: "environment rawjson", flag: "auto", env: map[string]string{"BUILDKIT_PROGRESS": "rawjson"}, want: Choice{ModeRawJSON, false}},
		{name: "environment auto", flag: "auto", term: true, env: map[string]string{"BUILDKIT_PROGRESS": "auto"}, want: Choice{ModeTTY, true}},
		{name: "empty environment", flag: "auto", term: true, env: map[string]string{"BUILDKIT_PROGRESS": ""}, want: Choice{ModeTTY, true}},
		{name: "flag wins over environment", flag: "tty", set: true, env: map[string]string{"BUILDKIT_PROGRESS": "plain"}, want: Choice{ModeTTY, true}},
		{name: "flag set to its default wins", flag: "auto", set: true, env: map[string]string{"BUILDKIT_PROGRESS": "quiet"}, want: Choice{ModePlain, false}},
		{name: "bad flag", flag: "fancy", set: true, wantErr: `--progress: unknown mode "fancy" (auto, tty, plain, rawjson, quiet)`},
		{name: "bad environment", flag: "auto", env: map[string]string{"BUILDKIT_PROGRESS": "Plain"}, wantErr: `BUILDKIT_PROGRESS: unknown mode "Plain"`},
		{name: "bad environment ignored under a flag", flag: "plain", set: true, env: map[string]string{"BUILDKIT_PROGRESS": "x"}, want: Choice{ModePlain, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
			}
			got, err := Choose(tc.flag, tc.set, lookup, tc.term)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Choose() = %v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Choose() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
