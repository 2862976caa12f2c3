package dockerfile

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
)

// dispatchExpose records "port/proto" entries in ExposedPorts.
func (c *converter) dispatchExpose(s *stage, x *instructions.ExposeCommand) error {
	var raw []string
	for _, p := range x.Ports {
		words, err := c.shlex.ProcessWords(p, s.env)
		if err != nil {
			return err
		}
		raw = append(raw, words...)
	}
	var ports []string
	for _, p := range raw {
		ps, err := c.parsePort(p, x)
		if err != nil {
			return err
		}
		ports = append(ports, ps...)
	}
	if s.img.Config.ExposedPorts == nil {
		s.img.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		s.img.Config.ExposedPorts[p] = struct{}{}
	}
	c.commitHistory(&s.img, fmt.Sprintf("EXPOSE %v", ports), false, false)
	return nil
}

// parsePort turns "[ip:][hostport:]port[-end][/proto]" into "port/proto"
// entries, one per port of a range.
func (c *converter) parsePort(raw string, x *instructions.ExposeCommand) ([]string, error) {
	parts := strings.Split(raw, ":")
	ip, host, cport := "", "", parts[len(parts)-1]
	if len(parts) >= 2 {
		host = parts[len(parts)-2]
	}
	if len(parts) >= 3 {
		ip = strings.Join(parts[:len(parts)-2], ":")
	}
	port, proto, _ := strings.Cut(cport, "/")
	if port == "" {
		return nil, fmt.Errorf("invalid port: %q: no port specified", raw)
	}
	switch strings.ToLower(proto) {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid port: %q: invalid proto: %s", raw, proto)
	}
	if proto != strings.ToLower(proto) {
		c.lint.Run(&linter.RuleExposeProtoCasing, x.Location(), linter.RuleExposeProtoCasing.Format(raw))
	}
	if ip != "" || host != "" {
		c.lint.Run(&linter.RuleExposeInvalidFormat, x.Location(), linter.RuleExposeInvalidFormat.Format(raw))
	}
	if ip != "" && net.ParseIP(strings.Trim(ip, "[]")) == nil {
		return nil, errors.New("invalid IP address: " + ip)
	}
	start, end, err := portRange(port)
	if err != nil {
		return nil, errors.New("invalid containerPort: " + port)
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, strconv.Itoa(p)+"/"+strings.ToLower(proto))
	}
	return slices.Compact(out), nil
}

func portRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := strconv.Atoi(a)
	if err != nil || start < 0 || start > 65535 {
		return 0, 0, fmt.Errorf("invalid port %q", a)
	}
	if !isRange {
		return start, start, nil
	}
	end, err := strconv.Atoi(b)
	if err != nil || end < start || end > 65535 {
		return 0, 0, fmt.Errorf("invalid port range %q", s)
	}
	return start, end, nil
}
