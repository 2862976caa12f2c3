package fileop

import "testing"

func TestParseChmod(t *testing.T) {
	tests := []struct {
		spec  string
		mode  uint32
		dir   bool
		want  uint32
		isErr bool
	}{
		{spec: "755", mode: 0o600, want: 0o755},
		{spec: "0644", mode: 0o777, dir: true, want: 0o644},
		{spec: "4755", mode: 0o644, want: 0o4755},
		{spec: "u+x", mode: 0o644, want: 0o744},
		{spec: "+x", mode: 0o644, want: 0o755},
		{spec: "a-w", mode: 0o666, want: 0o444},
		{spec: "go-rwx", mode: 0o755, want: 0o700},
		{spec: "u=rw,go=r", mode: 0o777, want: 0o644},
		{spec: "a=rX", mode: 0o600, want: 0o444},
		{spec: "a=rX", mode: 0o600, dir: true, want: 0o555},
		{spec: "a=rX", mode: 0o700, want: 0o555},
		{spec: "u+s,+t", mode: 0o755, want: 0o5755},
		{spec: "g=u", mode: 0o750, want: 0o770},
		{spec: "o+r-w", mode: 0o642, want: 0o644},
		{spec: "u", isErr: true},
		{spec: "z+x", isErr: true},
		{spec: "77777", isErr: true},
	}
	for _, tt := range tests {
		f, err := parseChmod(tt.spec)
		if tt.isErr {
			if err == nil {
				t.Errorf("parseChmod(%q): want error", tt.spec)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseChmod(%q): %v", tt.spec, err)
			continue
		}
		if got := f(tt.mode, tt.dir); got != tt.want {
			t.Errorf("chmod %s on %04o (dir %v) = %04o, want %04o", tt.spec, tt.mode, tt.dir, got, tt.want)
		}
	}
}
