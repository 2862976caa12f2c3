package executor

import "testing"

func TestHostsFile(t *testing.T) {
	got := string(hostsFile("box", []HostIP{{Host: "a.test", IP: "10.0.0.1"}, {Host: "b.test", IP: "fd00::2"}}))
	want := "127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.1\ta.test\nfd00::2\tb.test\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name, host string
		hostNet    bool
		want       string
	}{
		{"keeps public servers", "search x.test\nnameserver 10.0.0.53\n", false, "search x.test\nnameserver 10.0.0.53\n"},
		{"drops loopback servers", "nameserver 127.0.0.53\nnameserver 1.1.1.1\noptions edns0\n", false, "nameserver 1.1.1.1\noptions edns0\n"},
		{"falls back when none is left", "nameserver 127.0.0.53\n", false, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"no host file", "", false, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"host network keeps loopback", "nameserver 127.0.0.53\n", true, "nameserver 127.0.0.53\n"},
	}
	for _, tt := range tests {
		if got := string(resolvConf([]byte(tt.host), tt.hostNet)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExitError(t *testing.T) {
	if got := (&ExitError{Code: 42}).Error(); got != "exit code: 42" {
		t.Fatalf("got %q", got)
	}
}
