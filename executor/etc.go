package executor

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// hostsFile returns the /etc/hosts of a sandbox named hostname.
func hostsFile(hostname string, extra []HostIP) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "127.0.0.1\tlocalhost %s\n", hostname)
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", h.IP, h.Host)
	}
	return b.Bytes()
}

// fallbackNameservers are used when no usable nameserver is left.
var fallbackNameservers = []string{"8.8.8.8", "8.8.4.4"}

// resolvConf derives the sandbox's /etc/resolv.conf from the host's. Outside
// the host's network namespace a loopback nameserver is unreachable, so it
// is dropped, and public resolvers replace an empty list.
func resolvConf(host []byte, hostNetwork bool) []byte {
	var b bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if !hostNetwork && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
				continue
			}
			servers++
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if servers == 0 && !hostNetwork {
		for _, s := range fallbackNameservers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
	}
	return b.Bytes()
}
